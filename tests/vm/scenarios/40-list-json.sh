# shellcheck shell=bash
# Scenario (b): the broker's inventory is the kernel's.
# vb-pins: `vfioctl list --json` (as root) lists every IOMMU group of sysfs with exactly its member devices, their vendor/device/class and drivers (null for the bridge); the two e1000e groups and the bridge group are viable and have no holder
vb_strict
vb_need_broker

vb_try vb_vfioctl list --json
[ "$VB_RC" = 0 ] || vb_fail "vfioctl list --json failed: $VB_ERR"
python3 - "$VB_OUT" "$G_NIC1" "$G_NIC2" "$G_BR" <<'EOT' || vb_fail "the list does not match sysfs (see above)"
import json, os, sys

listing, wanted = sys.argv[1], [int(g) for g in sys.argv[2:]]
sysfs = "/sys/kernel/iommu_groups"
problems = []

def attr(bdf, name):
    with open(f"/sys/bus/pci/devices/{bdf}/{name}") as f:
        v = f.read().strip()
    return v[2:] if v.startswith("0x") else v

def driver(bdf):
    link = f"/sys/bus/pci/devices/{bdf}/driver"
    return os.path.basename(os.readlink(link)) if os.path.exists(link) else None

try:
    groups = {g["group"]: g for g in json.loads(listing)["groups"]}
except (ValueError, KeyError, TypeError) as e:
    sys.exit(f"not the documented JSON: {e!r}")
kernel = {int(g) for g in os.listdir(sysfs)}
if set(groups) != kernel:
    problems.append(f"groups listed {sorted(groups)}, sysfs has {sorted(kernel)}")
for n, g in sorted(groups.items()):
    if n not in kernel:
        continue
    members = sorted(os.listdir(f"{sysfs}/{n}/devices"))
    listed = {d.get("address"): d for d in g.get("devices", [])}
    if sorted(listed) != members:
        problems.append(f"group {n}: devices {sorted(listed)}, sysfs {members}")
        continue
    for bdf, d in listed.items():
        want = {"vendor": attr(bdf, "vendor"), "device": attr(bdf, "device"),
                "class": attr(bdf, "class"), "driver": driver(bdf)}
        got = {k: d.get(k) or None for k in want}
        if got != want:
            problems.append(f"group {n} {bdf}: listed {got}, sysfs {want}")
for n in wanted:
    g = groups.get(n, {})
    if g.get("viable") is not True:
        problems.append(f"group {n} should be viable: {g.get('viable')!r}")
    if g.get("holder") is not None:
        problems.append(f"group {n} should have no holder: {g.get('holder')!r}")
for p in problems:
    print("mismatch:", p)
if problems:
    sys.exit(1)
print(f"ok: {len(groups)} groups, members, ids, classes and drivers equal sysfs")
EOT
