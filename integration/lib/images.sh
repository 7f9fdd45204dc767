# Offline busybox images built from busybox-static: a rootfs tar for `podman import` and an
# OCI image layout (written by hand) for `ctr images import`.

IMAGE_REF=localhost/busybox:latest

# build_rootfs DIR: a busybox root filesystem with every applet linked, passwd/group and the
# usual mount points.
build_rootfs() {
    local r=$1 a
    mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,home,var,run}
    chmod 1777 "$r/tmp"
    cp /bin/busybox "$r/bin/busybox"
    for a in $("$r/bin/busybox" --list); do
        [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
    done
    cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    cat >"$r/etc/group" <<'EOF'
root:x:0:
user:x:1000:
nogroup:x:65534:
EOF
    : >"$r/etc/hosts"
    : >"$r/etc/resolv.conf"
}

# sha_of FILE: the sha256 hex digest.
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# build_oci_layout ROOTFS_TAR OUT_TAR [REF [CONFIG]]: one-layer OCI image layout named REF
# (default $IMAGE_REF); CONFIG is the image config's "config" object (default: busybox's PATH,
# Cmd sh).
BUSYBOX_CONFIG='{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"}'
build_oci_layout() {
    local tar=$1 out=$2 ref=${3:-$IMAGE_REF} config=${4:-$BUSYBOX_CONFIG} d
    d=$(mktemp -d "$WORK/oci.XXXX")
    mkdir -p "$d/blobs/sha256"
    gzip -n -c "$tar" >"$d/layer.tar.gz"
    local diff_id layer layer_size cfg cfg_size man man_size
    diff_id=$(sha_of "$tar")
    layer=$(sha_of "$d/layer.tar.gz")
    layer_size=$(stat -c %s "$d/layer.tar.gz")
    mv "$d/layer.tar.gz" "$d/blobs/sha256/$layer"
    printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"husk integration (busybox-static)"}]}' \
        "$config" "$diff_id" >"$d/config.json"
    cfg=$(sha_of "$d/config.json")
    cfg_size=$(stat -c %s "$d/config.json")
    mv "$d/config.json" "$d/blobs/sha256/$cfg"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
        "$cfg" "$cfg_size" "$layer" "$layer_size" >"$d/manifest.json"
    man=$(sha_of "$d/manifest.json")
    man_size=$(stat -c %s "$d/manifest.json")
    mv "$d/manifest.json" "$d/blobs/sha256/$man"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
        "$man" "$man_size" "$ref" >"$d/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
    tar -C "$d" -cf "$out" oci-layout index.json blobs
    rm -rf "$d"
}

# build_images DIR: DIR/rootfs.tar and DIR/busybox-oci.tar (reused when already there).
build_images() {
    local dir=$1
    [ -s "$dir/rootfs.tar" ] && [ -s "$dir/busybox-oci.tar" ] && return 0
    mkdir -p "$dir"
    build_rootfs "$dir/rootfs"
    tar --numeric-owner --owner=0 --group=0 -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
    build_oci_layout "$dir/rootfs.tar" "$dir/busybox-oci.tar"
}
# build_docker_archive ROOTFS_TAR OUT_TAR: a `docker save` archive (manifest.json, config,
# one layer) tagged $IMAGE_REF, for `docker load`.
build_docker_archive() {
    local tar=$1 out=$2 d diff_id cfg
    d=$(mktemp -d "$WORK/dockerarchive.XXXX")
    diff_id=$(sha_of "$tar")
    mkdir -p "$d/$diff_id"
    cp "$tar" "$d/$diff_id/layer.tar"
    printf '1.0' >"$d/$diff_id/VERSION"
    printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"husk integration (busybox-static)"}]}' \
        "$diff_id" >"$d/config.json"
    cfg=$(sha_of "$d/config.json")
    mv "$d/config.json" "$d/$cfg.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
        "$cfg" "$IMAGE_REF" "$diff_id" >"$d/manifest.json"
    tar -C "$d" -cf "$out" manifest.json "$cfg.json" "$diff_id"
    rm -rf "$d"
}
