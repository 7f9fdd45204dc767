#!/bin/sh
# mkbundle.sh DIR [ARGS...]: writes an OCI bundle in DIR with a busybox rootfs and a config.json
# from `husk spec`, running ARGS (default: sh -c 'echo hello from husk; uname -a; id').
set -eu
if [ -z "${HUSK:-}" ]; then # the release build for the host tuple (.cargo/config.toml)
    HUSK=$(dirname "$0")/../target/$(rustc -vV | sed -n 's/^host: //p')/release/husk
fi
husk=$HUSK
dir=$1; shift
rm -rf "$dir"; mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc"
bb=$(command -v busybox || echo /bin/busybox)
cp "$bb" "$dir/rootfs/bin/busybox"
for a in $("$bb" --list); do [ "$a" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/rootfs/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$dir/rootfs/etc/group"
"$husk" spec --bundle "$dir"
if [ $# -eq 0 ]; then set -- sh -c 'echo hello from husk; uname -a; id; hostname'; fi
args=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@")
python3 - "$dir/config.json" "$args" <<'PY'
import json, sys
path, args = sys.argv[1], json.loads(sys.argv[2])
cfg = json.load(open(path))
cfg["process"]["terminal"] = False
cfg["process"]["args"] = args
json.dump(cfg, open(path, "w"), indent="\t")
PY
