# Shared helpers for the guest builders (guests/linux/build, guests/nested/run).
# Sourced, not executed. Bash only. Everything lands under guests/out/.

GUESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$GUESTS_DIR/.." && pwd)
OUT_DIR="$GUESTS_DIR/out"
KERNEL_DIR="$OUT_DIR/kernel"          # the Debian kernel package, unpacked
KERNEL_META=linux-image-cloud-amd64   # meta package naming the current cloud kernel

say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { say "error: $*"; exit "${DIE_CODE:-1}"; }

# up_to_date OUT IN... : OUT exists and is newer than every IN.
up_to_date() {
    local out=$1; shift
    [ -e "$out" ] || return 1
    local in
    for in in "$@"; do
        [ "$out" -nt "$in" ] || return 1
    done
}

# with_lock NAME CMD... : run CMD holding an exclusive lock, so that parallel
# harness runs do not build the same cached artifact at once.
with_lock() {
    local name=$1; shift
    mkdir -p "$OUT_DIR"
    (
        flock 9 || exit 1
        "$@"
    ) 9>"$OUT_DIR/.$name.lock"
}

# fetch_kernel: make $KERNEL_DIR/root (dpkg -x of the cloud kernel package) and
# $KERNEL_DIR/release (e.g. 6.1.0-56-cloud-amd64). Uses a cached .deb when
# present; SWIFTVMM_KERNEL_DEB=path.deb overrides the download.
fetch_kernel() {
    local stamp="$KERNEL_DIR/release"
    [ -s "$stamp" ] && [ -d "$KERNEL_DIR/root/lib/modules/$(cat "$stamp")" ] && return 0
    mkdir -p "$KERNEL_DIR"
    local deb=${SWIFTVMM_KERNEL_DEB:-}
    if [ -z "$deb" ]; then
        local f
        for f in "$KERNEL_DIR"/linux-image-*-cloud-amd64_*.deb; do [ -f "$f" ] && deb=$f; done
    fi
    if [ -z "$deb" ]; then
        local pkg
        pkg=$(kernel_package_name) || die "cannot resolve $KERNEL_META to a kernel package"
        say "downloading $pkg"
        if ! (cd "$KERNEL_DIR" && apt-get download "$pkg" >/dev/null 2>&1); then
            say "apt-get download failed; running apt-get update and retrying"
            apt-get update >/dev/null || die "apt-get update failed"
            pkg=$(kernel_package_name) || die "cannot resolve $KERNEL_META"
            (cd "$KERNEL_DIR" && apt-get download "$pkg" >/dev/null) || die "apt-get download $pkg failed"
        fi
        for f in "$KERNEL_DIR/${pkg}"_*.deb; do [ -f "$f" ] && deb=$f; done
    fi
    [ -f "$deb" ] || die "no kernel package: $deb"
    rm -rf "$KERNEL_DIR/root.tmp"
    dpkg -x "$deb" "$KERNEL_DIR/root.tmp" || die "dpkg -x $deb failed"
    local release
    release=$(ls "$KERNEL_DIR/root.tmp/lib/modules" | head -n 1)
    [ -n "$release" ] && [ -f "$KERNEL_DIR/root.tmp/boot/vmlinuz-$release" ] \
        || die "$deb holds no vmlinuz/modules"
    rm -rf "$KERNEL_DIR/root"
    mv "$KERNEL_DIR/root.tmp" "$KERNEL_DIR/root"
    printf '%s\n' "$release" >"$stamp"
}

# kernel_package_name: linux-image-X-cloud-amd64 that the meta package depends on.
kernel_package_name() {
    local name
    name=$(apt-cache depends "$KERNEL_META" 2>/dev/null \
        | sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n 1)
    if [ -z "$name" ]; then
        apt-get update >/dev/null 2>&1 || return 1
        name=$(apt-cache depends "$KERNEL_META" 2>/dev/null \
            | sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n 1)
    fi
    [ -n "$name" ] && printf '%s\n' "$name"
}

kernel_release() { cat "$KERNEL_DIR/release"; }
kernel_vmlinuz() { echo "$KERNEL_DIR/root/boot/vmlinuz-$(kernel_release)"; }
kernel_modules() { echo "$KERNEL_DIR/root/lib/modules/$(kernel_release)"; }

# module_closure NAME... : print the module files (relative to the modules
# directory) needed to load NAMEs, dependencies first, each once. Names that
# are built into the kernel are skipped; unknown names are an error.
# Dependencies come from each module's own .modinfo "depends=" (no depmod).
module_closure() {
    local mdir; mdir=$(kernel_modules)
    declare -A path=() seen=()
    local f n
    while IFS= read -r f; do
        n=${f##*/}; n=${n%%.ko*}; n=${n//-/_}
        path[$n]=$f
    done < <(cd "$mdir" && find kernel -name '*.ko*')
    local order=()
    _visit() {
        local m=${1//-/_}
        [ -n "${seen[$m]:-}" ] && return 0
        seen[$m]=1
        if [ -z "${path[$m]:-}" ]; then
            if grep -Eq "/${1}\.ko(\..*)?\$|/${m}\.ko(\..*)?\$" "$mdir/modules.builtin"; then
                return 0
            fi
            die "module $1 is neither a module nor built into $(kernel_release)"
        fi
        local deps d
        deps=$(module_info "$mdir/${path[$m]}" depends)
        for d in ${deps//,/ }; do _visit "$d"; done
        order+=("${path[$m]}")
    }
    for n in "$@"; do _visit "$n"; done
    printf '%s\n' "${order[@]}"
}

# module_info FILE FIELD : a .modinfo field of a module file (.ko, .ko.xz, .ko.zst).
module_info() {
    module_cat "$1" | tr '\0' '\n' | sed -n "s/^$2=//p" | head -n 1
}
module_cat() {
    case $1 in
        *.ko.xz) xz -dc "$1" ;;
        *.ko.zst) zstd -dc "$1" ;;
        *.ko.gz) gzip -dc "$1" ;;
        *) cat "$1" ;;
    esac
}

# install_modules DEST NAME... : copy the closure of NAMEs into DEST/lib/modules
# (decompressed, so busybox insmod can load them) and write the load order to
# DEST/etc/modules.order (one path per line, absolute inside the guest).
install_modules() {
    local dest=$1; shift
    local mdir rel out list
    mdir=$(kernel_modules)
    list=$(module_closure "$@") || exit 1
    mkdir -p "$dest/etc" "$dest/lib/modules"
    : >"$dest/etc/modules.order"
    for rel in $list; do
        out="lib/modules/${rel##*/}"; out=${out%.xz}; out=${out%.zst}; out=${out%.gz}
        module_cat "$mdir/$rel" >"$dest/$out"
        echo "/$out" >>"$dest/etc/modules.order"
    done
}

# install_busybox DEST : static busybox with its applet links.
install_busybox() {
    local dest=$1 bb applet
    bb=$(command -v busybox || true)
    [ -n "$bb" ] || die "busybox not found (apt-get install busybox-static)"
    ! ldd "$bb" >/dev/null 2>&1 \
        || die "$bb is not statically linked (apt-get install busybox-static)"
    mkdir -p "$dest/bin" "$dest/sbin" "$dest/usr/bin" "$dest/usr/sbin"
    cp -L "$bb" "$dest/bin/busybox"
    for applet in $("$dest/bin/busybox" --list); do
        [ "$applet" = busybox ] && continue
        ln -sf busybox "$dest/bin/$applet"
    done
}

# make_cpio DIR : a newc archive of DIR on stdout (owned by root), preceded by
# a hand-made archive holding /dev/console, so the kernel can open the console
# for /init without mknod privileges on the build host.
make_cpio() {
    local dir=$1
    cpio_entry dev 040755 0 0 ""
    cpio_entry dev/console 020600 5 1 ""
    cpio_entry TRAILER!!! 0 0 0 ""
    (cd "$dir" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet)
}

# cpio_entry NAME OCTAL_MODE RDEVMAJOR RDEVMINOR : one newc header (no data).
cpio_entry() {
    local name=$1 mode=$(( $2 )) maj=$3 min=$4
    local namesize=$(( ${#name} + 1 ))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        0 "$mode" 0 0 1 0 0 0 0 "$maj" "$min" "$namesize" 0
    printf '%s\0' "$name"
    # header (110 bytes) + name padded to a multiple of 4
    local pad=$(( (4 - (110 + namesize) % 4) % 4 ))
    head -c "$pad" /dev/zero
}
