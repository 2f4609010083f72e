"""The compose file's ICMP set-up, reproduced: uid/gid 10001, no capability, the ping sysctl.

In a new network namespace (as Docker gives a container) with only loopback, the image's
user with every capability dropped gets ontwatch's "datagram" ICMP mode and an echo reply
from 127.0.0.1 when net.ipv4.ping_group_range is set as deploy/compose.yaml sets it, and
"none" without it. Needs root (unshare, setpriv); probes 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.deploy.dockerfile import ROOT, arg_defaults

yaml = pytest.importorskip("yaml")

pytestmark = pytest.mark.privileged

CHILD = r"""
import os, socket, struct, sys
from monitor.icmp_echo import probe_icmp_mode
mode = probe_icmp_mode()
print("mode", mode.mode, os.getuid(), os.getgid())
if mode.mode == "datagram":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    s.settimeout(2)
    body = b"ontwatch"
    header = struct.pack("!BBHHH", 8, 0, 0, 0, 1)  # echo request; the kernel fills id/checksum
    s.sendto(header + body, ("127.0.0.1", 0))
    reply, _ = s.recvfrom(1024)
    print("reply type", reply[0], reply.endswith(body))
"""


def sysctl_value() -> str:
    """net.ipv4.ping_group_range as deploy/compose.yaml sets it."""
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    return str(compose["services"]["ontwatch"]["sysctls"]["net.ipv4.ping_group_range"])


def in_container_like_namespace(sysctl: str | None) -> subprocess.CompletedProcess[str]:
    """Run CHILD as the image's uid/gid with no capabilities in a fresh network namespace."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        pytest.skip("needs root, unshare and setpriv")
    uid = arg_defaults()["ONTWATCH_UID"]
    script = "ip link set lo up 2>/dev/null || true\n"
    if sysctl is not None:
        script += f"echo '{sysctl}' > /proc/sys/net/ipv4/ping_group_range\n"
    script += (
        f"exec setpriv --reuid {uid} --regid {uid} --clear-groups --inh-caps=-all "
        f'--bounding-set=-all --no-new-privs "$0" -c "$1"\n'
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        ["unshare", "--net", "sh", "-c", script, sys.executable, CHILD],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if "unshare failed" in result.stderr:
        pytest.skip(f"cannot create a network namespace here: {result.stderr.strip()}")
    return result


def test_the_sysctl_gives_datagram_icmp_without_capabilities() -> None:
    """With the compose sysctl: mode datagram, and 127.0.0.1 answers the echo."""
    result = in_container_like_namespace(sysctl_value())
    uid = arg_defaults()["ONTWATCH_UID"]
    assert result.returncode == 0, result.stderr
    assert f"mode datagram {uid} {uid}" in result.stdout
    assert "reply type 0 True" in result.stdout


def test_without_the_sysctl_there_is_no_icmp() -> None:
    """The control: a new namespace's default range excludes every group, so mode is none."""
    result = in_container_like_namespace(None)
    assert result.returncode == 0, result.stderr
    assert "mode none" in result.stdout
