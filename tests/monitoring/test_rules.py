# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The queue's alert rules and dashboard, proven offline: promtool check/test rules, every alert both firing and
not firing, the shipped files in step with their sources, every metric name known to redis_exporter."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tests' / 'utils'))

import monitoring_files  # noqa: E402

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope='session')
def promtool():
    """promtool from PATH (`make monitoring` puts Debian's into .venv/bin when it is missing)."""
    path = os.environ.get('PROMTOOL') or shutil.which('promtool')
    if not path:
        pytest.fail('promtool is missing: run `make monitoring` (it extracts /usr/bin/promtool from Debian\'s '
                    'prometheus package into .venv/bin, starting nothing), or `apt-get install prometheus`.')
    return path


def run(promtool, *args, cwd):
    proc = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout + proc.stderr


# Every alert of every variant: the default rules, and with replication + Sentinel.
VARIANTS = {
    'default': ({}, 'rules_test.yml'),
    'sentinel': ({'raibid_redis_architecture': 'replication', 'raibid_redis_sentinel': True,
                  'raibid_redis_replica_count': 3}, 'rules_sentinel_test.yml'),
}


@pytest.fixture(params=sorted(VARIANTS))
def variant(request, tmp_path):
    overrides, test_file = VARIANTS[request.param]
    rules = tmp_path / 'rules.yml'
    rules.write_text(monitoring_files.render_rules(**overrides))
    shutil.copy(HERE / test_file, tmp_path / 'test.yml')
    return tmp_path, yaml.safe_load(rules.read_text()), yaml.safe_load((HERE / test_file).read_text())


def test_shipped_files_are_rendered_from_their_sources():
    assert (monitoring_files.RULES_FILE.read_text() == monitoring_files.render_rules()), \
        'run python tests/utils/monitoring_files.py'
    assert monitoring_files.DASHBOARD_FILE.read_text() == monitoring_files.dashboard_text()


def test_promtool_check_rules(promtool, variant):
    tmp, dummy, dummy = variant
    code, out = run(promtool, 'check', 'rules', 'rules.yml', cwd=tmp)
    assert code == 0, out
    # The shipped file too.
    code, out = run(promtool, 'check', 'rules', str(monitoring_files.RULES_FILE), cwd=tmp)
    assert code == 0, out


def test_promtool_test_rules(promtool, variant):
    tmp, dummy, dummy = variant
    code, out = run(promtool, 'test', 'rules', 'test.yml', cwd=tmp)
    assert code == 0, out
    assert 'SUCCESS' in out


def test_every_alert_is_tested_firing_and_not_firing(variant):
    dummy, rules, tests = variant
    alerts = {r['alert'] for g in rules['groups'] for r in g['rules']}
    firing, quiet = set(), set()
    for case in tests['tests']:
        for check in case.get('alert_rule_test', []):
            (firing if check.get('exp_alerts') else quiet).add(check['alertname'])
    assert alerts - firing == set(), 'alerts never tested firing'
    assert alerts - quiet == set(), 'alerts never tested not firing'
    assert firing <= alerts and quiet <= alerts


def test_every_alert_has_summary_description_and_runbook(variant):
    dummy, rules, dummy = variant
    readme = (monitoring_files.ROLE / 'README.md').read_text()
    for group in rules['groups']:
        for rule in group['rules']:
            assert rule['labels']['severity'] in ('warning', 'critical')
            assert rule['annotations']['summary'] and rule['annotations']['description']
            assert re.search(r'^\| `%s` \|' % rule['alert'], readme, re.M), rule['alert'] + ' has no runbook line'


def test_thresholds_come_from_the_role_variables():
    rules = yaml.safe_load(monitoring_files.render_rules(
        raibid_redis_alert_backlog=42, raibid_redis_alert_backlog_for='3m', raibid_redis_alert_pending_age=77,
        raibid_redis_alert_consumer_idle=88, raibid_redis_alert_memory_ratio=0.5,
        raibid_redis_alert_selector='job="q"', raibid_redis_stream='my"stream', raibid_redis_consumer_group='g'))
    by_name = {r['alert']: r for g in rules['groups'] for r in g['rules']}
    assert by_name['RaibidQueueBacklog']['expr'].endswith('> 42') and by_name['RaibidQueueBacklog']['for'] == '3m'
    assert '> 77' in by_name['RaibidQueuePendingTooOld']['expr']
    assert '< 88' in by_name['RaibidQueueNoActiveConsumer']['expr']
    assert by_name['RaibidRedisMemoryHigh']['expr'].endswith('> 0.5')
    assert 'redis_up{job="q"}' in by_name['RaibidRedisDown']['expr']
    # The stream name is quoted as a PromQL string.
    assert 'stream="my\\"stream",group="g"' in by_name['RaibidQueueBacklog']['expr']
    assert 'RaibidRedisReplicaLost' not in by_name and 'RaibidRedisSentinelQuorumLost' not in by_name


def dashboard_exprs():
    data = json.loads(monitoring_files.DASHBOARD_FILE.read_text())
    exprs = [t['expr'] for p in data['panels'] for t in p['targets']]
    exprs += [v['query']['query'] for v in data['templating']['list'] if isinstance(v.get('query'), dict)]
    return data, exprs


def test_dashboard_is_valid_and_draws_the_queue():
    data, exprs = dashboard_exprs()
    assert data['uid'] == 'raibid-queue' and data['title']
    ids = [p['id'] for p in data['panels']]
    assert len(ids) == len(set(ids))
    for panel in data['panels']:
        assert panel['targets'] and panel['datasource']['uid'] == '${datasource}'
        grid = panel['gridPos']
        assert 0 <= grid['x'] and grid['x'] + grid['w'] <= 24 and grid['h'] > 0
    # No two panels overlap.
    cells = set()
    for panel in data['panels']:
        g = panel['gridPos']
        mine = {(x, y) for x in range(g['x'], g['x'] + g['w']) for y in range(g['y'], g['y'] + g['h'])}
        assert not cells & mine, panel['title']
        cells |= mine
    titles = ' '.join(p['title'].lower() for p in data['panels'])
    for wanted in ('enqueued', 'backlog', 'pending', 'oldest pending', 'consumers', 'idle', 'memory', 'commands'):
        assert wanted in titles
    # Balanced parentheses and braces in every query.
    for expr in exprs:
        for a, b in ('()', '{}', '[]'):
            assert expr.count(a) == expr.count(b), expr


def all_metric_names():
    names = set()
    for overrides, dummy in VARIANTS.values():
        rules = yaml.safe_load(monitoring_files.render_rules(**overrides))
        for group in rules['groups']:
            for rule in group['rules']:
                names |= monitoring_files.metric_names(rule['expr'])
    for expr in dashboard_exprs()[1]:
        names |= monitoring_files.metric_names(expr)
    return names


def exporter_source():
    """redis_exporter's Go source in the module cache (the testbed builds the exporter from it), if there."""
    gomodcache = os.environ.get('GOMODCACHE') or str(Path.home() / 'go' / 'pkg' / 'mod')
    found = sorted(Path(gomodcache, 'github.com', 'oliver006').glob('redis_exporter@v*/exporter'))
    return found[-1] if found else None


def test_every_metric_name_is_one_redis_exporter_exports():
    source = exporter_source()
    if source is None:
        pytest.skip('no redis_exporter source in the Go module cache; tests/testbed/test_monitoring.py checks the '
                    'names against the real exporter')
    text = '\n'.join(p.read_text() for p in source.glob('*.go') if not p.name.endswith('_test.go'))
    # The exporter names metrics without its "redis_" namespace; INFO fields map to names in quotes.
    known = set(re.findall(r'"([a-z0-9_]+)"', text))
    missing = {name for name in all_metric_names() if name[len('redis_'):] not in known}
    assert missing == set(), '%s: not in %s' % (sorted(missing), source)
