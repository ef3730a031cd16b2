# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Monitoring on the cluster: the exporter's stream metrics after real queue traffic carry every metric name the
alert rules and the dashboard use; the PrometheusRule and the dashboard ConfigMap come, stay unchanged, go."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

# site is a fixture: pytest finds it by name in this module.
from test_role import changed_count, redis_cli, site  # noqa: F401  # pylint: disable=unused-import

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tests' / 'utils'))

import monitoring_files  # noqa: E402


def scrape(kubectl, namespace, pod):
    return kubectl('get', '--raw', '/api/v1/namespaces/%s/pods/%s:9121/proxy/metrics' % (namespace, pod))


def sample(metrics, name, **labels):
    """The value of the one sample of `name` whose labels include `labels`."""
    found = []
    for line in metrics.splitlines():
        match = re.match(r'^%s\{(.*)\} (\S+)$' % re.escape(name), line)
        if match and all('%s="%s"' % item in match.group(1) for item in labels.items()):
            found.append(float(match.group(2)))
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_metrics_rules_and_dashboard_on_the_cluster(site, kubectl, tmp_path, prometheus_rule_crd):
    ns = site.namespace
    pod = ns + '-master-0'
    options = tmp_path / 'options.yml'
    settings = {'raibid_redis_prometheus_rule': True, 'raibid_redis_grafana_dashboard': True,
                'raibid_redis_prometheus_rule_labels': {'release': 'prometheus'}}
    options.write_text(yaml.safe_dump(settings))

    # Check mode on an empty cluster says what it would create, and creates nothing.
    output, dummy = site('site.yml', 'hosts1', '--check', '-e', '@%s' % options)
    assert 'Would create PrometheusRule %s-alerts and ConfigMap %s-dashboard' % (ns, ns) in output
    assert kubectl('get', 'namespace', ns, '--ignore-not-found', '-o', 'name').strip() == ''

    output, converge = site('site.yml', 'hosts1', '-e', '@%s' % options)

    # The exporter reads the queue's stream (URL-encoded name) with its consumers.
    statefulset = kubectl.json('-n', ns, 'get', 'statefulset', ns + '-master')
    metrics_container = [c for c in statefulset['spec']['template']['spec']['containers'] if c['name'] == 'metrics'][0]
    assert '--check-single-streams=db0=raibid%3Ajobs' in ' '.join(metrics_container['command'])
    assert 'streams-exclude-consumer-metrics' not in ' '.join(metrics_container['command'])

    # Queue traffic: 5 jobs, a consumer reads 3 and never acknowledges them (a worker that died holding them).
    for i in range(5):
        redis_cli(kubectl, ns, pod, 'XADD raibid:jobs "*" job_id j%d job_type build payload "{}"' % i, tls=False)
    read = redis_cli(kubectl, ns, pod, 'XREADGROUP GROUP raibid-workers dead-worker COUNT 3 STREAMS raibid:jobs ">"',
                     tls=False)
    assert read.count('job_id') == 3, read

    metrics = scrape(kubectl, ns, pod)
    queue = {'stream': 'raibid:jobs', 'group': 'raibid-workers'}
    assert sample(metrics, 'redis_stream_length', stream='raibid:jobs') == 5
    assert sample(metrics, 'redis_stream_group_lag', **queue) == 2
    assert sample(metrics, 'redis_stream_group_messages_pending', **queue) == 3
    assert sample(metrics, 'redis_stream_group_consumers', **queue) == 1
    assert sample(metrics, 'redis_stream_group_consumer_messages_pending', consumer='dead-worker', **queue) == 3
    assert sample(metrics, 'redis_stream_group_consumer_idle_seconds', consumer='dead-worker', **queue) >= 0
    assert sample(metrics, 'redis_commands_total', cmd='xadd') >= 5

    # The same figures without Prometheus: tasks_from health, against the alerts' thresholds.
    play = yaml.safe_load((tmp_path / 'site.yml').read_text())
    play[0]['tasks'][1:] = [{'name': 'Check the queue', 'ansible.builtin.include_role': {
        'name': 'raibid.queue.redis', 'tasks_from': 'health'}}]
    (tmp_path / 'health.yml').write_text(yaml.safe_dump(play))
    output, dummy = site('health.yml', 'hosts1')
    assert changed_count(output) == 0, output
    assert re.search(r'"active_consumers": 1,\s+"backlog": 2,', output), output[-3000:]
    unhealthy = site.raw('health.yml', 'hosts1', '-e', 'raibid_redis_alert_backlog=1 raibid_redis_alert_pending_age=0')
    assert unhealthy.returncode != 0
    assert 'backlog of 2 jobs, above 1 (RaibidQueueBacklog)' in unhealthy.stdout, unhealthy.stdout[-3000:]
    assert 'idle for' in unhealthy.stdout and 'RaibidQueuePendingTooOld' in unhealthy.stdout

    # Every metric name of the rules and the dashboard is in the real exporter's output. Sentinel's come from an
    # exporter that reads Sentinel, which the chart's sidecar does not (tests/monitoring checks those names against
    # the exporter's source).
    exported = set(re.findall(r'^(redis_[a-z0-9_]+)[{ ]', metrics, re.M))
    names = set()
    for overrides in ({}, {'raibid_redis_architecture': 'replication', 'raibid_redis_sentinel': True,
                           'raibid_redis_replica_count': 3}):
        rules = yaml.safe_load(monitoring_files.render_rules(**overrides))
        names |= {n for g in rules['groups'] for r in g['rules'] for n in monitoring_files.metric_names(r['expr'])}
    dashboard = json.loads(monitoring_files.DASHBOARD_FILE.read_text())
    for panel in dashboard['panels']:
        for target in panel['targets']:
            names |= monitoring_files.metric_names(target['expr'])
    sentinel_only = {n for n in names if n.startswith('redis_sentinel_')}
    assert sentinel_only == {'redis_sentinel_master_ok_sentinels', 'redis_sentinel_master_ckquorum_status'}
    assert names - sentinel_only - exported == set(), sorted(exported)
    print('metric names checked against the exporter: %s' % ', '.join(sorted(names - sentinel_only)))

    # The PrometheusRule holds the rules rendered for this release; the ConfigMap the shipped dashboard.
    rule = kubectl.json('-n', ns, 'get', 'prometheusrule', ns + '-alerts')
    assert rule['metadata']['labels']['release'] == 'prometheus'
    assert rule['metadata']['labels']['app.kubernetes.io/managed-by'] == 'raibid.queue'
    expected = yaml.safe_load(monitoring_files.render_rules(raibid_redis_namespace=ns, raibid_redis_release=ns))
    assert rule['spec'] == expected
    assert '{{ $value }}' in json.dumps(rule['spec'])
    config_map = kubectl.json('-n', ns, 'get', 'configmap', ns + '-dashboard')
    assert config_map['metadata']['labels']['grafana_dashboard'] == '1'
    assert json.loads(config_map['data']['raibid-queue-dashboard.json']) == dashboard

    output, again = site('site.yml', 'hosts1', '-e', '@%s' % options)
    assert changed_count(output) == 0, output

    # The dashboard turned off: its ConfigMap goes (check mode first), the rule stays.
    options.write_text(yaml.safe_dump(dict(settings, raibid_redis_grafana_dashboard=False)))
    output, dummy = site('site.yml', 'hosts1', '--check', '-e', '@%s' % options)
    assert changed_count(output) == 1, output
    assert kubectl('-n', ns, 'get', 'configmap', ns + '-dashboard', '--ignore-not-found', '-o', 'name').strip()
    output, dummy = site('site.yml', 'hosts1', '-e', '@%s' % options)
    assert changed_count(output) == 1, output
    assert kubectl('-n', ns, 'get', 'configmap', ns + '-dashboard', '--ignore-not-found', '-o', 'name').strip() == ''

    # A run that fails updating the rule (a label value the API refuses) leaves the rule it did not create.
    options.write_text(yaml.safe_dump(dict(settings, raibid_redis_grafana_dashboard=False,
                                           raibid_redis_prometheus_rule_labels={'release': 'not a label value!'})))
    failed = site.raw('site.yml', 'hosts1', '-e', '@%s' % options)
    assert failed.returncode != 0 and 'Rolled back' in failed.stdout, failed.stdout[-3000:]
    assert kubectl.json('-n', ns, 'get', 'prometheusrule', ns + '-alerts')['metadata']['labels']['release'] == \
        'prometheus'

    # Teardown (without purge) removes the rule with the release.
    site('teardown.yml', 'hosts1', '-e', 'raibid_redis_purge=false')
    assert kubectl('-n', ns, 'get', 'prometheusrule', ns + '-alerts', '--ignore-not-found', '-o', 'name').strip() == ''
    print('monitoring converge %.0f s, re-run %.0f s' % (converge, again))


def test_a_failed_run_removes_the_rule_it_created(site, kubectl, tmp_path, prometheus_rule_crd):
    """A run that created the PrometheusRule and then failed (the dashboard ConfigMap is refused by a quota) removes
    the rule again, with the release it installed; the namespace, which existed, stays."""
    ns = site.namespace
    kubectl('create', 'namespace', ns)
    kubectl('-n', ns, 'wait', '--for=jsonpath={.metadata.name}=kube-root-ca.crt', 'configmap/kube-root-ca.crt',
            '--timeout=60s')
    # Room for kube-root-ca.crt and the chart's three ConfigMaps, not for the dashboard's.
    kubectl.apply({'apiVersion': 'v1', 'kind': 'ResourceQuota', 'metadata': {'name': 'configmaps'},
                   'spec': {'hard': {'count/configmaps': '4'}}}, namespace=ns)
    options = tmp_path / 'options.yml'
    options.write_text(yaml.safe_dump({'raibid_redis_prometheus_rule': True, 'raibid_redis_grafana_dashboard': True}))
    failed = site.raw('site.yml', 'hosts1', '-e', '@%s' % options)
    assert failed.returncode != 0, failed.stdout[-3000:]
    assert "Step 'Create the queue's dashboard ConfigMap" in failed.stdout, failed.stdout[-3000:]
    assert 'monitoring objects this run created removed' in failed.stdout
    assert 'release %s uninstalled' % ns in failed.stdout
    assert kubectl('-n', ns, 'get', 'prometheusrule', ns + '-alerts', '--ignore-not-found', '-o', 'name').strip() == ''
    assert kubectl('get', 'namespace', ns, '-o', 'name').strip() == 'namespace/' + ns
