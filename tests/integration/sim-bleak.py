#!/usr/bin/python3
# Independent fidelity check of lockhub-sim: Debian's python3-bleak (0.20) drives the fake
# BlueZ exactly as it drives bluetoothd. Scans for a lock in pairing mode, connects,
# resolves services, starts notifications on the pairing characteristic, writes Request
# Data(Public Key) and expects the lock's 36-byte Public Key frame with a valid CRC.
import asyncio
import sys

from bleak import BleakClient, BleakScanner

PAIRING_SVC = "a92ee100-5501-11e4-916c-0800200c9a66"
PAIRING_GDIO = "a92ee101-5501-11e4-916c-0800200c9a66"
REQUEST_PUBLIC_KEY = bytes.fromhex("0100030027a7")


def crc16_ccitt_false(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


async def main(name):
    found = {}

    def seen(dev, adv):
        if dev.name == name and PAIRING_SVC in adv.service_data:
            found["dev"] = dev
            found["adv"] = adv

    scanner = BleakScanner(detection_callback=seen)
    await scanner.start()
    for _ in range(100):
        if "dev" in found:
            break
        await asyncio.sleep(0.1)
    await scanner.stop()
    if "dev" not in found:
        print("NOT OK: %s not found in pairing mode" % name)
        return 1
    adv = found["adv"]
    mfr = adv.manufacturer_data.get(0x004C)
    if not mfr or mfr[:2] != b"\x02\x15" or len(mfr) != 23:
        print("NOT OK: iBeacon manufacturer data missing or malformed: %r" % mfr)
        return 1
    print("ok: found %s (%s) rssi %d, beacon %s" % (name, found["dev"].address, adv.rssi, mfr.hex()))

    frames = bytearray()
    got = asyncio.Event()

    def on_value(_, data):
        frames.extend(data)
        if len(frames) >= 36:
            got.set()

    async with BleakClient(found["dev"], timeout=20.0) as client:
        svc = client.services.get_service(PAIRING_SVC)
        if svc is None:
            print("NOT OK: pairing service not resolved")
            return 1
        print("ok: connected, %d services resolved" % len(list(client.services)))
        await client.start_notify(PAIRING_GDIO, on_value)
        await client.write_gatt_char(PAIRING_GDIO, REQUEST_PUBLIC_KEY, response=True)
        try:
            await asyncio.wait_for(got.wait(), 10.0)
        except asyncio.TimeoutError:
            print("NOT OK: no public key after 10 s (%d bytes)" % len(frames))
            return 1
        await client.stop_notify(PAIRING_GDIO)
    msg = bytes(frames[:36])
    cmd = int.from_bytes(msg[0:2], "little")
    crc = int.from_bytes(msg[34:36], "little")
    if cmd != 0x0003 or crc != crc16_ccitt_false(msg[:34]) or len(frames) != 36:
        print("NOT OK: bad public key frame %s" % bytes(frames).hex())
        return 1
    print("ok: public key frame %s (CRC %04x valid)" % (msg.hex(), crc))
    return 0


sys.exit(asyncio.run(main(sys.argv[1])))
