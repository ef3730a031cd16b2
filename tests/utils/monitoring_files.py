# Copyright (c) 2026, raibid.queue contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes the role's shipped monitoring files from their sources, or checks they are in step (`--check`).

- roles/redis/files/raibid-queue-alerts.yml: templates/alert-rules.yml.j2 rendered with the role's defaults (the
  role renders the same template, with the user's variables, into the PrometheusRule).
- roles/redis/files/raibid-queue-dashboard.json: the Grafana dashboard built by `dashboard()` below.

Also imported by tests/monitoring and tests/testbed/test_monitoring.py (`render_rules`, `metric_names`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import jinja2
import yaml

ROLE = Path(__file__).resolve().parents[2] / 'roles' / 'redis'
RULES_FILE = ROLE / 'files' / 'raibid-queue-alerts.yml'
DASHBOARD_FILE = ROLE / 'files' / 'raibid-queue-dashboard.json'


def _bool(value):
    return value if isinstance(value, bool) else str(value).lower() in ('1', 'true', 'yes', 'on')


def render_rules(**overrides):
    """The rules template rendered with the role's defaults and `overrides`, as text."""
    variables = yaml.safe_load((ROLE / 'defaults' / 'main.yml').read_text())
    variables.update(overrides)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / 'templates')), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True)
    env.filters['to_json'] = json.dumps
    env.filters['bool'] = _bool
    return env.get_template('alert-rules.yml.j2').render(**variables)


# Metric names in PromQL: identifiers that start with redis_, and Prometheus' own `up`.
METRIC = re.compile(r'\b(redis_[a-z0-9_]+|up)\b(?=\s*[{\[(]|\s*[<>=!/*+-]|\s*$|\s*\))')


def metric_names(expr):
    return set(re.findall(r'\b(redis_[a-z0-9_]+)\b', expr))


# --- The dashboard ---------------------------------------------------------------------------------------------

QUEUE = 'namespace="$namespace",stream="$stream",group="$group"'
INSTANCE = 'namespace="$namespace"'


def _panel(panel_id, title, description, targets, x, y, w=8, h=8, unit='short', kind='timeseries'):
    return {
        'id': panel_id,
        'type': kind,
        'title': title,
        'description': description,
        'datasource': {'type': 'prometheus', 'uid': '${datasource}'},
        'gridPos': {'x': x, 'y': y, 'w': w, 'h': h},
        'fieldConfig': {'defaults': {'unit': unit}, 'overrides': []},
        'options': {},
        'targets': [{'refId': chr(ord('A') + i), 'expr': expr, 'legendFormat': legend,
                     'datasource': {'type': 'prometheus', 'uid': '${datasource}'}}
                    for i, (expr, legend) in enumerate(targets)],
    }


def _variable(name, label, query):
    return {'name': name, 'label': label, 'type': 'query', 'refresh': 2, 'sort': 1,
            'datasource': {'type': 'prometheus', 'uid': '${datasource}'},
            'definition': query, 'query': {'query': query, 'refId': name}, 'current': {}, 'options': [],
            'includeAll': False, 'multi': False}


def dashboard():
    """The queue dashboard, three rows of three panels (the role README describes it)."""
    panels = [
        # Row 1: flow.
        _panel(1, 'Jobs enqueued per second', 'XADD calls per second on this Redis (every producer XADD is one job).',
               [('sum(rate(redis_commands_total{%s,cmd="xadd"}[$__rate_interval]))' % INSTANCE, 'enqueued/s')],
               0, 0, unit='ops'),
        _panel(2, 'Backlog (lag)', 'Entries not yet delivered to the group, and the stream length.',
               [('max(redis_stream_group_lag{%s})' % QUEUE, 'backlog'),
                ('max(redis_stream_length{namespace="$namespace",stream="$stream"})', 'stream length')],
               8, 0),
        _panel(3, 'Pending', 'Entries delivered to a consumer and not yet acknowledged, in all and per consumer.',
               [('max(redis_stream_group_messages_pending{%s})' % QUEUE, 'pending'),
                ('max by (consumer) (redis_stream_group_consumer_messages_pending{%s})' % QUEUE, '{{consumer}}')],
               16, 0),
        # Row 2: consumers.
        _panel(4, 'Oldest pending age (at least)',
               'Idle time of the longest-idle consumer that holds pending entries: its oldest pending entry is at '
               'least this old. Alert RaibidQueuePendingTooOld fires above the threshold.',
               [('max(redis_stream_group_consumer_idle_seconds{%s} and redis_stream_group_consumer_messages_pending{%s} > 0)'
                 % (QUEUE, QUEUE), 'oldest pending')],
               0, 8, unit='s'),
        _panel(5, 'Consumers', 'Consumers known to the group (active or not).',
               [('max(redis_stream_group_consumers{%s})' % QUEUE, 'consumers')],
               8, 8),
        _panel(6, 'Consumer idle time', 'Seconds since each consumer last read from the group.',
               [('max by (consumer) (redis_stream_group_consumer_idle_seconds{%s})' % QUEUE, '{{consumer}}')],
               16, 8, unit='s'),
        # Row 3: the server.
        _panel(7, 'Memory against maxmemory', 'Used memory, and maxmemory when set (0 means unlimited).',
               [('max(redis_memory_used_bytes{%s})' % INSTANCE, 'used'),
                ('max(redis_memory_max_bytes{%s})' % INSTANCE, 'maxmemory')],
               0, 16, unit='bytes'),
        _panel(8, 'Commands per second', 'All commands processed per second, and the queue commands among them.',
               [('sum(rate(redis_commands_processed_total{%s}[$__rate_interval]))' % INSTANCE, 'all'),
                ('sum by (cmd) (rate(redis_commands_total{%s,cmd=~"xadd|xreadgroup|xack|xautoclaim|xclaim"}[$__rate_interval]))'
                 % INSTANCE, '{{cmd}}')],
               8, 16, unit='ops'),
        _panel(9, 'Redis up', '1 when the exporter reaches Redis.',
               [('min(redis_up{%s})' % INSTANCE, 'up')],
               16, 16, kind='stat'),
    ]
    return {
        'title': 'raibid job queue',
        'uid': 'raibid-queue',
        'description': 'The raibid Redis Streams job queue: flow, consumers and the server (raibid.queue).',
        'tags': ['raibid', 'redis', 'queue'],
        'timezone': 'browser',
        'editable': True,
        'schemaVersion': 39,
        'version': 1,
        'refresh': '30s',
        'time': {'from': 'now-6h', 'to': 'now'},
        'annotations': {'list': []},
        'links': [],
        'templating': {'list': [
            {'name': 'datasource', 'label': 'Prometheus', 'type': 'datasource', 'query': 'prometheus',
             'current': {}, 'options': [], 'refresh': 1},
            _variable('namespace', 'Namespace', 'label_values(redis_up, namespace)'),
            _variable('stream', 'Stream', 'label_values(redis_stream_length{namespace="$namespace"}, stream)'),
            _variable('group', 'Group',
                      'label_values(redis_stream_group_lag{namespace="$namespace",stream="$stream"}, group)'),
        ]},
        'panels': panels,
    }


def dashboard_text():
    return json.dumps(dashboard(), indent=2, sort_keys=True) + '\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='fail when a shipped file is out of date')
    args = parser.parse_args()
    stale = []
    for path, text in ((RULES_FILE, render_rules()), (DASHBOARD_FILE, dashboard_text())):
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        sys.exit('Out of date (run python tests/utils/monitoring_files.py): %s' % ', '.join(stale))


if __name__ == '__main__':
    main()
