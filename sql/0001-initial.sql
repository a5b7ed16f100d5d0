-- lockhub schema, version 1.
--
-- Conventions (every table):
--   * STRICT tables; every time is INTEGER microseconds since the Unix epoch (UTC, hub clock),
--     column names end in _usec; the lock's own clock is kept apart (lock_time_usec).
--   * Booleans are INTEGER 0/1 with a CHECK.
--   * Enumerations are TEXT with a CHECK listing every value. Adding a value later is a
--     migration that rebuilds the table (SQLite cannot ALTER a CHECK).
--   * Secrets (pairing shared key, security PIN, keypad code digits) live only in columns
--     named *_sealed (BLOB) next to a key_version column. key_version 0 means the bytes are
--     stored as given (not sealed yet); >0 names the key that sealed them, so sealing at rest
--     and key rotation need no schema change. No secret appears in any other column, in
--     events.detail or in snapshots.
--   * Foreign keys are enforced (PRAGMA foreign_keys=ON at every open).
--   * Tables that grow without bound (events, samples, recovery_attempts) are trimmed by
--     the retention steps, oldest first, in small batches.

-- Small key/value facts about this hub: a stable hub id for Home Assistant unique ids,
-- the id of the key that seals secrets, when it was last rotated, ...
CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL CHECK (length(key) BETWEEN 1 AND 64),
        value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- One row per paired lock. name and address are both unique: the name is what users,
-- D-Bus paths and MQTT topics use; the address is what BlueZ uses.
CREATE TABLE locks (
        id                  INTEGER PRIMARY KEY,
        name                TEXT NOT NULL UNIQUE
                                CHECK (length(name) BETWEEN 1 AND 64 AND name = trim(name)),
        -- BlueZ form, upper case: "AA:BB:CC:DD:EE:FF"
        address             TEXT NOT NULL UNIQUE
                                CHECK (length(address) = 17 AND address GLOB
                                       '[0-9A-F][0-9A-F]:[0-9A-F][0-9A-F]:[0-9A-F][0-9A-F]:[0-9A-F][0-9A-F]:[0-9A-F][0-9A-F]:[0-9A-F][0-9A-F]'),
        -- the driver that speaks to it (src/<protocol>/); a name, so a second vendor needs no migration
        protocol            TEXT NOT NULL DEFAULT 'nuki'
                                CHECK (length(protocol) BETWEEN 1 AND 32 AND protocol NOT GLOB '*[^a-z0-9-]*'),
        device_type         INTEGER CHECK (device_type BETWEEN 0 AND 255), -- protocol's device type, NULL unknown
        model               TEXT CHECK (length(model) <= 64),
        firmware            TEXT CHECK (length(firmware) <= 32),
        hardware            TEXT CHECK (length(hardware) <= 32),
        -- random id of the lock that changes with a factory reset (Nuki: 16 bytes)
        uuid                BLOB CHECK (length(uuid) BETWEEN 1 AND 32),
        -- pairing credentials
        auth_id             INTEGER CHECK (auth_id BETWEEN 0 AND 4294967295),
        app_id              INTEGER CHECK (app_id BETWEEN 0 AND 4294967295),
        id_type             INTEGER CHECK (id_type BETWEEN 0 AND 255), -- Nuki: 0 app, 1 bridge, 2 fob, 3 keypad
        ultra               INTEGER NOT NULL DEFAULT 0 CHECK (ultra IN (0, 1)), -- Ultra/5G flow, 32-bit PIN
        shared_key_sealed   BLOB,
        security_pin_sealed BLOB,
        key_version         INTEGER NOT NULL DEFAULT 0 CHECK (key_version >= 0),
        -- the adapter it was paired through / last reached over ("hci0" or the adapter address)
        adapter             TEXT CHECK (length(adapter) <= 32),
        -- the lock rejects our pairing: a person must re-pair it; survives restarts
        needs_repair        INTEGER NOT NULL DEFAULT 0 CHECK (needs_repair IN (0, 1)),
        -- last config update count seen; a change means someone changed settings or codes
        config_update_count INTEGER CHECK (config_update_count >= 0),
        -- incremental activity-log sync: index of the newest log entry imported, and the log
        -- "epoch", bumped when the uuid changes (factory reset restarts the lock's indices)
        log_synced_index    INTEGER CHECK (log_synced_index BETWEEN 0 AND 4294967295),
        log_epoch           INTEGER NOT NULL DEFAULT 0 CHECK (log_epoch >= 0),
        -- last known lock model (state, battery, door, ...) as JSON, so a restart starts warm
        last_state          TEXT CHECK (last_state IS NULL OR json_valid(last_state)),
        last_seen_usec      INTEGER CHECK (last_seen_usec >= 0),
        created_usec        INTEGER NOT NULL CHECK (created_usec >= 0),
        paired_usec         INTEGER CHECK (paired_usec >= 0),
        updated_usec        INTEGER NOT NULL CHECK (updated_usec >= 0)
) STRICT;

-- A factory reset gives the lock a new uuid and restarts its log indices at 1: start a new
-- log epoch so new entries are not mistaken for duplicates of old ones.
CREATE TRIGGER locks_uuid_changed AFTER UPDATE OF uuid ON locks
        WHEN old.uuid IS NOT NULL AND new.uuid IS NOT old.uuid
BEGIN
        UPDATE locks SET log_epoch = old.log_epoch + 1, log_synced_index = NULL WHERE id = new.id;
END;

-- People. The hub is the source of truth for users and their codes.
CREATE TABLE users (
        id           INTEGER PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64 AND name = trim(name)),
        created_usec INTEGER NOT NULL CHECK (created_usec >= 0),
        updated_usec INTEGER NOT NULL CHECK (updated_usec >= 0)
) STRICT;

-- What a user opens a lock with: today keypad codes. The desired state of each code; what
-- each lock holds is in credential_locks.
CREATE TABLE credentials (
        id             INTEGER PRIMARY KEY,
        user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        kind           TEXT NOT NULL DEFAULT 'keypad-code' CHECK (kind IN ('keypad-code')),
        -- Nuki keeps 20 bytes of name per code
        name           TEXT NOT NULL CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 20),
        code_sealed    BLOB NOT NULL CHECK (length(code_sealed) > 0),
        key_version    INTEGER NOT NULL DEFAULT 0 CHECK (key_version >= 0),
        enabled        INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
        -- date range, NULL = unbounded on that side
        valid_from_usec  INTEGER CHECK (valid_from_usec >= 0),
        valid_until_usec INTEGER CHECK (valid_until_usec >= 0),
        -- bit 0 Monday ... bit 6 Sunday; 127 = every day
        weekdays       INTEGER NOT NULL DEFAULT 127 CHECK (weekdays BETWEEN 0 AND 127),
        -- time-of-day window in minutes after midnight (lock's local time), both or neither
        time_from_min  INTEGER CHECK (time_from_min BETWEEN 0 AND 1439),
        time_until_min INTEGER CHECK (time_until_min BETWEEN 0 AND 1439),
        -- bumped on every change of the desired state; a lock is in sync when it confirmed
        -- this revision (credential_locks.synced_revision)
        revision       INTEGER NOT NULL DEFAULT 1 CHECK (revision >= 1),
        created_usec   INTEGER NOT NULL CHECK (created_usec >= 0),
        updated_usec   INTEGER NOT NULL CHECK (updated_usec >= 0),
        CHECK (valid_from_usec IS NULL OR valid_until_usec IS NULL OR valid_from_usec < valid_until_usec),
        CHECK ((time_from_min IS NULL) = (time_until_min IS NULL))
) STRICT;
CREATE INDEX credentials_user ON credentials (user_id);

-- A credential assigned to a lock, and how far that lock agrees with it.
--   desired: 'present' (the lock must hold it) or 'absent' (remove it from the lock, then
--            delete this row). Withdrawing a code is a desired state, not a DELETE, so the
--            reconciler still knows the lock's code id and never mistakes our removal for drift.
--   state:   pending (to be written or verified), synced (read back equal at
--            synced_revision), failed (reason says why; retried after next_attempt_usec),
--            drifted (the lock holds something else than we wrote; reason says what).
CREATE TABLE credential_locks (
        lock_id            INTEGER NOT NULL REFERENCES locks (id) ON DELETE CASCADE,
        credential_id      INTEGER NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
        desired            TEXT NOT NULL DEFAULT 'present' CHECK (desired IN ('present', 'absent')),
        state              TEXT NOT NULL DEFAULT 'pending'
                               CHECK (state IN ('pending', 'synced', 'failed', 'drifted')),
        reason             TEXT CHECK (length(reason) <= 256),
        lock_code_id       INTEGER CHECK (lock_code_id BETWEEN 0 AND 65535), -- the lock's id for it
        synced_revision    INTEGER CHECK (synced_revision >= 1),
        -- what the lock reported at the last read, as JSON, never with the digits
        reported           TEXT CHECK (reported IS NULL OR json_valid(reported)),
        last_verified_usec INTEGER CHECK (last_verified_usec >= 0),
        attempts           INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        next_attempt_usec  INTEGER CHECK (next_attempt_usec >= 0),
        updated_usec       INTEGER NOT NULL CHECK (updated_usec >= 0),
        PRIMARY KEY (lock_id, credential_id)
) STRICT;
CREATE INDEX credential_locks_credential ON credential_locks (credential_id);
CREATE UNIQUE INDEX credential_locks_code_id ON credential_locks (lock_id, lock_code_id)
        WHERE lock_code_id IS NOT NULL;

-- Everything that happened: lock actions (who, what, source, result), state changes,
-- keypad entries, errors, pairing, code sync and drift, refused requests, hub events.
-- Entries imported from a lock's activity log carry (log_epoch, log_index) and are
-- imported at most once (events_log_entry).
CREATE TABLE events (
        id             INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: clients page by id
        ts_usec        INTEGER NOT NULL CHECK (ts_usec >= 0),
        lock_time_usec INTEGER CHECK (lock_time_usec >= 0), -- the lock's own timestamp
        lock_id        INTEGER REFERENCES locks (id) ON DELETE CASCADE, -- NULL: hub-wide
        kind           TEXT NOT NULL CHECK (kind IN (
                               'action',   -- lock/unlock/unlatch/... requested or reported, with result
                               'state',    -- lock state changed
                               'door',     -- door sensor
                               'battery',  -- battery level/critical/charging changed
                               'keypad',   -- keypad entry (valid or invalid code)
                               'link',     -- connected, disconnected, seen, lost
                               'error',    -- lock or transport error
                               'recovery', -- a step of the recovery ladder
                               'pairing',  -- paired, unpaired, needs repair, re-provisioned
                               'code',     -- code sync, drift, adoption
                               'config',   -- settings read/changed/restored
                               'firmware', -- firmware version changed
                               'access',   -- a request refused (wrong code, not allowed)
                               'log',      -- other entries of the lock's log
                               'hub')),    -- daemon, bluetoothd, MQTT, adapters
        source         TEXT NOT NULL CHECK (source IN (
                               'hub',      -- lockhubd itself (recovery, reconciliation, schedules)
                               'dbus',     -- lockhubctl or another D-Bus client
                               'mqtt',     -- Home Assistant / MQTT
                               'lock',     -- reported by the lock (log, state), trigger unknown
                               'manual',   -- turned by hand
                               'button',   -- the lock's button
                               'keypad',   -- keypad or fingerprint
                               'auto',     -- auto lock, lock 'n' go, time control on the lock
                               'app',      -- another authorization (phone app, fob, other bridge)
                               'unknown')),
        actor          TEXT CHECK (length(actor) <= 128), -- who: user, authorization name, D-Bus uid, ...
        auth_id        INTEGER CHECK (auth_id BETWEEN 0 AND 4294967295), -- lock authorization that acted
        user_id        INTEGER REFERENCES users (id) ON DELETE SET NULL,
        credential_id  INTEGER REFERENCES credentials (id) ON DELETE SET NULL,
        log_epoch      INTEGER CHECK (log_epoch >= 0),
        log_index      INTEGER CHECK (log_index BETWEEN 0 AND 4294967295),
        detail         TEXT CHECK (detail IS NULL OR json_valid(detail)),
        CHECK ((log_index IS NULL) = (log_epoch IS NULL)),
        CHECK (log_index IS NULL OR lock_id IS NOT NULL)
) STRICT;
CREATE INDEX events_ts ON events (ts_usec);
CREATE INDEX events_lock_ts ON events (lock_id, ts_usec);
CREATE UNIQUE INDEX events_log_entry ON events (lock_id, log_epoch, log_index)
        WHERE log_index IS NOT NULL;

-- Measurements over time, one value per row, for battery, link and motor analytics.
CREATE TABLE samples (
        id      INTEGER PRIMARY KEY,
        lock_id INTEGER NOT NULL REFERENCES locks (id) ON DELETE CASCADE,
        ts_usec INTEGER NOT NULL CHECK (ts_usec >= 0),
        kind    TEXT NOT NULL CHECK (kind IN (
                        'battery-percent',       -- %
                        'battery-mv',            -- millivolts
                        'battery-critical',      -- 0/1
                        'charging',              -- 0/1
                        'keypad-battery-critical',
                        'door-battery-critical',
                        'temperature',           -- degrees C (battery report)
                        'rssi',                  -- dBm, advert or connection
                        'connect-ms',            -- time to a usable connection
                        'connect-failed',        -- 1 per failed connection attempt
                        'latency-ms',            -- command round trip
                        'motor-ms')),            -- duration of a motor action
        value   REAL NOT NULL
) STRICT;
CREATE INDEX samples_lock_kind_ts ON samples (lock_id, kind, ts_usec);
CREATE INDEX samples_ts ON samples (ts_usec);

-- Each step the recovery ladder took, with its outcome and how long it took. lock_id is
-- NULL for steps that concern only an adapter or bluetoothd.
CREATE TABLE recovery_attempts (
        id            INTEGER PRIMARY KEY,
        lock_id       INTEGER REFERENCES locks (id) ON DELETE CASCADE,
        adapter       TEXT CHECK (length(adapter) <= 32),
        ts_usec       INTEGER NOT NULL CHECK (ts_usec >= 0), -- when the step started
        step          TEXT NOT NULL CHECK (step IN (
                              'retry', 'reconnect', 'adapter-power-cycle', 'adapter-move',
                              'device-remove', 'rediscover', 'needs-repair', 'reprovision',
                              'bluez-restart')),
        attempt       INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1), -- n-th time at this step
        outcome       TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'skipped', 'aborted')),
        duration_usec INTEGER NOT NULL DEFAULT 0 CHECK (duration_usec >= 0),
        detail        TEXT CHECK (detail IS NULL OR json_valid(detail))
) STRICT;
CREATE INDEX recovery_attempts_lock_ts ON recovery_attempts (lock_id, ts_usec);
CREATE INDEX recovery_attempts_ts ON recovery_attempts (ts_usec);

-- Firmware versions each lock has run, one row per change.
CREATE TABLE firmware_history (
        id       INTEGER PRIMARY KEY,
        lock_id  INTEGER NOT NULL REFERENCES locks (id) ON DELETE CASCADE,
        ts_usec  INTEGER NOT NULL CHECK (ts_usec >= 0),
        firmware TEXT NOT NULL CHECK (length(firmware) BETWEEN 1 AND 32),
        hardware TEXT CHECK (length(hardware) <= 32)
) STRICT;
CREATE INDEX firmware_history_lock_ts ON firmware_history (lock_id, ts_usec);

-- Settings read from a lock (config, advanced config, time controls), kept for restore and
-- re-provisioning. Never holds secrets. Survives unpairing (lock_id becomes NULL) so a lock
-- paired again can get its settings back, matched by address.
CREATE TABLE lock_snapshots (
        id                  INTEGER PRIMARY KEY,
        lock_id             INTEGER REFERENCES locks (id) ON DELETE SET NULL,
        lock_address        TEXT NOT NULL CHECK (length(lock_address) = 17),
        ts_usec             INTEGER NOT NULL CHECK (ts_usec >= 0),
        kind                TEXT NOT NULL CHECK (kind IN ('config', 'advanced-config', 'time-controls')),
        reason              TEXT NOT NULL CHECK (reason IN ('paired', 'changed', 'manual', 'before-restore')),
        config_update_count INTEGER CHECK (config_update_count >= 0),
        data                TEXT NOT NULL CHECK (json_valid(data))
) STRICT;
CREATE INDEX lock_snapshots_lock ON lock_snapshots (lock_id, kind, ts_usec);
CREATE INDEX lock_snapshots_address ON lock_snapshots (lock_address, kind, ts_usec);
