"""A runnable copy of the production Mosquitto config, for tests and local trials.

deploy/mosquitto/mosquitto.conf is the production file. Tests must run *that*
file, not a look-alike, so this renderer changes only what cannot be the same
on a test machine (ports, file paths, the TLS certificates, the user to run
as) and keeps every other line as it is. `drop` removes named options, which
is how a test shows what a production line is for (e.g. without
`max_queued_messages` a burst is lost).

Access: production loads the dynamic-security plugin (`plugin`,
`plugin_opt_config_file`) and nothing else; pass `dynsec_file` (and the
plugin's path on this machine) for that. Passing `password_file` and
`acl_file` instead swaps those two lines for the old ACL-file security, which
tests still use where a shared subscription cannot matter and which
tests/security/test_dynsec_roles.py shows to be unsafe with hub replicas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_CONF = REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf"

# Lines that only make sense with a TLS listener.
_TLS_KEYS = frozenset({"cafile", "capath", "certfile", "keyfile", "tls_version",
                       "require_certificate", "ciphers", "ciphers_tls1.3", "crlfile"})


class ConfRenderError(ValueError):
    """The production config does not have a line the renderer must rewrite."""


def render_conf(
    text: str,
    *,
    ports: Mapping[int, int],
    persistence_location: Path,
    password_file: Path | None = None,
    acl_file: Path | None = None,
    dynsec_file: Path | None = None,
    dynsec_plugin: Path | None = None,
    tls: bool = False,
    user: str | None = None,
    drop: Iterable[str] = (),
) -> str:
    """`text` with listeners moved to loopback ports and files moved under test paths.

    `ports` maps each production listener port to the port to use instead;
    every listener must be mapped and is bound to 127.0.0.1. With `tls=False`
    the certificate lines go, so the listener speaks plain MQTT. `user` replaces
    the `user` line (a test running as root cannot let Mosquitto drop to the
    `mosquitto` user, who could not read the test's files).
    """
    dropped = set(drop)
    replace = {"persistence_location": f"{persistence_location}/"}
    swap: dict[str, str] = {}
    if dynsec_file is not None:
        if dynsec_plugin is None or password_file is not None or acl_file is not None:
            raise ConfRenderError("dynsec_file needs dynsec_plugin, and no password/acl file")
        replace["plugin"] = str(dynsec_plugin)
        replace["plugin_opt_config_file"] = str(dynsec_file)
    elif password_file is not None and acl_file is not None:
        # The ACL-file security in place of the plugin's two lines (or of the old
        # config's own password_file/acl_file lines).
        swap = {"plugin": f"password_file {password_file}",
                "plugin_opt_config_file": f"acl_file {acl_file}",
                "password_file": f"password_file {password_file}",
                "acl_file": f"acl_file {acl_file}"}
    else:
        raise ConfRenderError("give dynsec_file (production) or password_file and acl_file")
    if user is not None:
        replace["user"] = user
    seen: set[str] = set()
    out: list[str] = []
    for line in text.splitlines():
        words = line.split()
        key = words[0] if words and not words[0].startswith("#") else ""
        if key in dropped or (not tls and key in _TLS_KEYS):
            out.append(f"# (removed for this copy) {line}")
            continue
        if key == "listener":
            prod_port = int(words[1])
            if prod_port not in ports:
                raise ConfRenderError(f"{PRODUCTION_CONF.name}: listener {prod_port} has no "
                                      "test port in `ports`")
            out.append(f"listener {ports[prod_port]} 127.0.0.1")
            seen.add(key)
            continue
        if key in replace:
            out.append(f"{key} {replace[key]}")
            seen.add(key)
            continue
        if key in swap:
            out.append(swap[key])
            seen.add(swap[key].split()[0])
            continue
        out.append(line)
    needed = ["listener", *replace]
    if dynsec_file is None:
        needed += ["password_file", "acl_file"]
    missing = [k for k in needed if k not in seen and k not in dropped]
    if missing:
        raise ConfRenderError(f"config has no {missing[0]!r} line to rewrite")
    return "\n".join(out) + "\n"


def render_production_conf(**kwargs: object) -> str:
    """`render_conf` applied to deploy/mosquitto/mosquitto.conf."""
    return render_conf(PRODUCTION_CONF.read_text(encoding="utf-8"), **kwargs)  # type: ignore[arg-type]
