#!/usr/bin/env python3
"""Where a CRI pod start's time goes (bench/cri-breakdown.sh; bench/README.md, "Kubernetes pod
start (CRI)"): joins containerd's debug log with the cri-timer wrappers' calls.log and prints,
per handler and pod count, the median of each step of RunPodSandbox -> CreateContainer ->
StartContainer, and the zero-cost-runtime floor (pod start minus the runtime's own calls).

usage: cri-breakdown.py CONTAINERD_LOG CALLS_LOG
"""
import datetime as dt
import re
import sys
from collections import defaultdict

MSG = re.compile(r'time="([^"]+)" level=\w+ msg="((?:[^"\\]|\\.)*)"(?: (.*))?$')
RUN_POD = re.compile(
    r'RunPodSandbox for &PodSandboxMetadata\{Name:([^,]+),Uid:([^,]+),.*?\}'
    r'( returns sandbox id \\"(\w+)\\")?$')
CREATE = re.compile(
    r'CreateContainer within sandbox \\"(\w+)\\" for (?:container )?&ContainerMetadata\{.*?\}'
    r'( returns container id \\"(\w+)\\")?$')
START = re.compile(r'StartContainer for \\"(\w+)\\"( returns successfully)?$')
RUNTIME_CMDS = ('create', 'start', 'exec', 'kill', 'delete', 'state', 'update', 'ps')

# (column, what it is); all in ms, medians over the pods of a row.
COLUMNS = [
    ('pod start', 'RunPodSandbox received -> StartContainer returned (containerd\'s log)'),
    ('sandbox prep', 'RunPodSandbox: id, image, netns, spec, metadata, until CNI starts'),
    ('CNI', 'RunPodSandbox: CNI ADD (bridge + host-local + loopback)'),
    ('shim start', 'RunPodSandbox: `containerd-shim-runc-v2 start` for the sandbox'),
    ('rt create (pause)', 'the runtime\'s `create` of the sandbox (pause) container'),
    ('rt start (pause)', 'the runtime\'s `start` of it'),
    ('sandbox rest', 'RunPodSandbox: the rest (shim boot, rootfs mount, task API, events)'),
    ('CreateContainer', 'CreateContainer: snapshot, spec, metadata (no runtime call)'),
    ('shim start (ctr)', 'StartContainer: `shim start` again (finds the pod\'s shim)'),
    ('rt create (ctr)', 'the runtime\'s `create` of the container'),
    ('rt start (ctr)', 'the runtime\'s `start` of it'),
    ('start rest', 'StartContainer: the rest (task API, IO, events)'),
    ('runtime', 'sum of the four runtime calls'),
    ('floor', 'pod start minus the runtime calls: the same pod with a zero-cost runtime'),
    ('rt cpu', 'CPU (user+sys) of the four runtime processes'),
]


def ms(stamp):
    """containerd's RFC 3339 time with ns -> ms since the epoch."""
    base, frac = stamp.rstrip('Z').split('.')
    d = dt.datetime.strptime(base, '%Y-%m-%dT%H:%M:%S').replace(tzinfo=dt.timezone.utc)
    return d.timestamp() * 1e3 + int((frac + '000000000')[:9]) / 1e6


def parse_log(path):
    ev = defaultdict(dict)
    uid2sb, sb2c, sbname = {}, {}, {}
    for line in open(path, errors='replace'):
        m = MSG.match(line.rstrip('\n'))
        if not m:
            continue
        t, msg, rest = ms(m.group(1)), m.group(2), m.group(3) or ''
        if r := RUN_POD.match(msg):
            if r.group(3):
                ev[r.group(2)]['rps_end'] = t
                uid2sb[r.group(2)] = r.group(4)
                sbname[r.group(4)] = r.group(1)
            else:
                ev[r.group(2)]['rps_begin'] = t
        elif msg == 'begin cni setup' or msg.startswith('cni result'):
            sid = re.search(r'podsandboxid=(\w+)', rest)
            if sid:
                ev[sid.group(1)]['cni_begin' if msg == 'begin cni setup' else 'cni_end'] = t
        elif c := CREATE.match(msg):
            if c.group(2):
                ev[c.group(1)]['cc_end'] = t
                sb2c.setdefault(c.group(1), c.group(3))
            else:
                ev[c.group(1)].setdefault('cc_begin', t)
        elif s := START.match(msg):
            ev[s.group(1)]['sc_end' if s.group(2) else 'sc_begin'] = t
    return ev, uid2sb, sb2c, sbname


def parse_calls(path):
    """id -> [(what, start ms, end ms, cpu ms, tag)]"""
    calls = defaultdict(list)
    for line in open(path, errors='replace'):
        f = line.split()
        if len(f) < 5:
            continue
        tag, t0, t1, cpu, args = f[0], int(f[1]) / 1e6, int(f[2]) / 1e6, f[4], f[5:]
        cpu = int(cpu.removeprefix('cpu=')) / 1e3
        if tag == 'containerd-shim-runc-v2':
            if args and args[-1] == 'start' and '-id' in args:
                calls[args[args.index('-id') + 1]].append(('shim start', t0, t1, cpu, tag))
        elif not tag.startswith('cni-') and args:
            what = next((a for a in args if a in RUNTIME_CMDS), None)
            if what:
                calls[args[-1]].append((what, t0, t1, cpu, tag))
    return calls


def pods(ev, uid2sb, sb2c, sbname, calls):
    rows = []
    for uid, sb in uid2sb.items():
        c = sb2c.get(sb)
        e, s, ce = ev[uid], ev[sb], ev.get(c, {})
        if not c or 'sc_end' not in ce or 'cni_end' not in s or 'rps_begin' not in e:
            continue
        handler = next((x[4] for x in calls[sb] if x[0] == 'create'), None)
        if handler is None:
            continue

        def call(i, what, field=None):
            x = [y for y in calls[i] if y[0] == what]
            if not x:
                return float('nan')
            return x[0][3] if field == 'cpu' else x[0][2] - x[0][1]

        r = {
            'handler': handler,
            't0': e['rps_begin'],
            'pod start': ce['sc_end'] - e['rps_begin'],
            'sandbox prep': s['cni_begin'] - e['rps_begin'],
            'CNI': s['cni_end'] - s['cni_begin'],
            'shim start': call(sb, 'shim start'),
            'rt create (pause)': call(sb, 'create'),
            'rt start (pause)': call(sb, 'start'),
            'CreateContainer': s['cc_end'] - s['cc_begin'],
            'shim start (ctr)': call(c, 'shim start'),
            'rt create (ctr)': call(c, 'create'),
            'rt start (ctr)': call(c, 'start'),
            'rt cpu': sum(call(i, w, 'cpu') for i in (sb, c) for w in ('create', 'start')),
        }
        r['sandbox rest'] = (e['rps_end'] - e['rps_begin'] - r['sandbox prep'] - r['CNI']
                             - r['shim start'] - r['rt create (pause)'] - r['rt start (pause)'])
        r['start rest'] = (ce['sc_end'] - ce['sc_begin'] - r['shim start (ctr)']
                           - r['rt create (ctr)'] - r['rt start (ctr)'])
        r['runtime'] = sum(r[k] for k in ('rt create (pause)', 'rt start (pause)',
                                          'rt create (ctr)', 'rt start (ctr)'))
        r['floor'] = r['pod start'] - r['runtime']
        rows.append(r)
    return rows


def batches(rows):
    """Pods started together (the 10-pod rounds) vs alone: by start time and handler."""
    rows.sort(key=lambda r: r['t0'])
    out, cur = [], []
    for r in rows:
        if cur and (r['t0'] - cur[0]['t0'] > 500 or r['handler'] != cur[0]['handler']):
            out.append(cur)
            cur = []
        cur.append(r)
    if cur:
        out.append(cur)
    return out


def median(v):
    v = sorted(x for x in v if x == x)
    return v[len(v) // 2] if v else float('nan')


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ev, uid2sb, sb2c, sbname = parse_log(sys.argv[1])
    rows = pods(ev, uid2sb, sb2c, sbname, parse_calls(sys.argv[2]))
    groups = batches(rows)
    names = [c for c, _ in COLUMNS]
    print('| pods at once | handler | pods | ' + ' | '.join(names) + ' |')
    print('|' + ' --- |' * (len(names) + 3))
    med = {}
    for size in (1, 10):
        for h in sorted({r['handler'] for r in rows}):
            sel = [r for g in groups for r in g
                   if (len(g) >= 5) == (size == 10) and r['handler'] == h]
            if not sel:
                continue
            med[size, h] = {k: median([r[k] for r in sel]) for k in names}
            print(f'| {size} | {h} | {len(sel)} | '
                  + ' | '.join(f'{med[size, h][k]:.1f}' for k in names) + ' |')
    print()
    for size in (1, 10):
        husk, runc = med.get((size, 'husk')), med.get((size, 'runc'))
        if husk and runc:
            print(f'{size} pod(s) at once, medians: husk/runc pod start '
                  f'{husk["pod start"] / runc["pod start"]:.2f}x; with a zero-cost runtime '
                  f'(husk\'s floor {husk["floor"]:.0f} ms) at best '
                  f'{husk["floor"] / runc["pod start"]:.2f}x')
    print()
    for name, what in COLUMNS:
        print(f'- {name}: {what}')


if __name__ == '__main__':
    main()
