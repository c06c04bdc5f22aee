# shellcheck shell=bash
# Scenario: the guest's PCI topology and VFIO modules are what the tier needs.
# vb-pins: each e1000e is alone in its IOMMU group; the pcie-pci-bridge and both e1000 behind it share one group and the bridge has no driver; vfio, vfio-pci and vfio_iommu_type1 are loaded and /dev/vfio/vfio exists
vb_strict

mapfile -t nics < <(vb_find_pci 8086 10d3)
mapfile -t bridges < <(vb_find_pci 1b36 000e)
mapfile -t br_nics < <(vb_find_pci 8086 100e)
echo "e1000e: ${nics[*]}; pcie-pci-bridge: ${bridges[*]}; e1000: ${br_nics[*]}"
[ "${#nics[@]}" = 2 ] || vb_fail "expected 2 e1000e (8086:10d3), found ${#nics[@]}"
[ "${#bridges[@]}" = 1 ] || vb_fail "expected 1 pcie-pci-bridge (1b36:000e), found ${#bridges[@]}"
[ "${#br_nics[@]}" = 2 ] || vb_fail "expected 2 e1000 (8086:100e), found ${#br_nics[@]}"

for m in vfio vfio_pci vfio_iommu_type1; do
	[ -d "/sys/module/$m" ] || vb_fail "module $m is not loaded"
done
[ -c /dev/vfio/vfio ] || vb_fail "/dev/vfio/vfio is missing"

echo "IOMMU groups:"
for g in /sys/kernel/iommu_groups/*; do
	echo "  $(basename "$g"): $(vb_group_members "$(basename "$g")" | tr '\n' ' ')"
done

g1=$(vb_group_of "${nics[0]}")
g2=$(vb_group_of "${nics[1]}")
gb=$(vb_group_of "${bridges[0]}")
[ "$(vb_group_members "$g1")" = "${nics[0]}" ] || vb_fail "${nics[0]} is not alone in group $g1"
[ "$(vb_group_members "$g2")" = "${nics[1]}" ] || vb_fail "${nics[1]} is not alone in group $g2"
want=$(printf '%s\n' "${bridges[0]}" "${br_nics[@]}" | sort)
[ "$(vb_group_members "$gb")" = "$want" ] ||
	vb_fail "group $gb is $(vb_group_members "$gb" | tr '\n' ' '), expected the bridge and both e1000"
for d in "${br_nics[@]}"; do
	[[ $(readlink -f "/sys/bus/pci/devices/$d") == */"${bridges[0]}"/* ]] ||
		vb_fail "$d is not behind the bridge ${bridges[0]}"
done
# With SHPC hot-plug, shpchp would bind the bridge and the group could
# never become viable: ACPI hot-plug must leave it driverless.
[ "$(vb_driver_of "${bridges[0]}")" = none ] ||
	vb_fail "the bridge is bound to $(vb_driver_of "${bridges[0]}")"

cat >"$VB_ENV" <<EOT
NIC1=${nics[0]}
NIC2=${nics[1]}
BRIDGE=${bridges[0]}
BR_E1=${br_nics[0]}
BR_E2=${br_nics[1]}
BR_BUS=${br_nics[0]%:*}
G_NIC1=$g1
G_NIC2=$g2
G_BR=$gb
EOT
echo "topology:"
sed 's/^/  /' "$VB_ENV"
