#!/bin/sh
# lockhub-sim vs reference/bluez.md section 10, "Adapter".
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
start_dbus || exit 1

check "Powered: reply then signal, power-off cascade batched, NotReady, power-on restores nothing" \
	sim_test power --scale 10
check "per-sender discovery sessions: InProgress, Failed, sender leaving, Discovering after the reply" \
	sim_test sessions --scale 10
check "SetDiscoveryFilter validation, per sender, survives Stop, merged OR; GetDiscoveryFilters" \
	sim_test filter --scale 10
check "adverts only while discovering; RSSI delta rule; ManufacturerData/ServiceData; DuplicateData" \
	sim_test adverts --scale 10
check "device creation: discoverable flag unless a client has a filter" sim_test creation --scale 10
check "temporary-device expiry; Connect makes persistent; RemoveDevice semantics" sim_test temporary --scale 10
check "a hung adapter times out until it is powered off and on" sim_test hang --scale 10
check "experimental mode: ConnectDevice (path after link-up, org.bluez.Failed); Alias fallbacks" \
	sim_test experimental --scale 10 --experimental
finish
