# Helpers shared by infra/test.sh and .ci/run. Source it; every function is idempotent.

log() { printf '\n==> %s\n' "$*" >&2; }

apt_updated=""
apt_install() {
    # apt_install PKG... — installs what is missing (Debian).
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_postgres() {
    # A Postgres on 127.0.0.1:5432 with trust auth for user postgres (starts or installs one if needed).
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        apt_install postgresql
    fi
    local ver
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    log "starting Postgres $ver"
    local conf="/etc/postgresql/$ver/main"
    # trust on loopback for the test user (the machine's own cluster already has it)
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
        sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 1; done
    echo "Postgres did not start" >&2
    return 1
}

ensure_python_tools() {
    # The repository's .venv with the Python tools tests use: moto (S3, SQS, Secrets Manager emulator),
    # cfn-lint (template.yaml), cargo-lambda (Lambda builds; brings zig), and the reference implementations the
    # quality measures are checked against (krippendorff, statsmodels, scikit-learn, crowd-kit). Pinned;
    # reinstalled only if missing.
    if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
    local want=()
    .venv/bin/moto_server --help >/dev/null 2>&1 || want+=("moto[server]==5.2.5")
    .venv/bin/cfn-lint --version >/dev/null 2>&1 || want+=("cfn-lint==1.58.0")
    .venv/bin/cargo-lambda --version >/dev/null 2>&1 || want+=("cargo-lambda==1.9.2")
    .venv/bin/python -c 'import krippendorff, statsmodels, sklearn, crowdkit' >/dev/null 2>&1 ||
        want+=("krippendorff==0.9.0" "statsmodels==0.15.0" "scikit-learn==1.9.1" "crowd-kit==1.4.2")
    if [ ${#want[@]} -gt 0 ]; then
        log "pip install ${want[*]}"
        .venv/bin/pip install -q --disable-pip-version-check "${want[@]}"
    fi
    export PATH="$PWD/.venv/bin:$PATH"
}
