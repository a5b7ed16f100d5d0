/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Journal MESSAGE_IDs: one per kind of message that has an entry in
 * systemd/lockhub.catalog (explanation and steps, shown by `journalctl -x`). Generated
 * once, never changed or reused. Log them with
 *     log_struct(LOG_WARNING, 0, LOG_FIELDS("MESSAGE_ID=" LOCKHUB_MESSAGE_BATTERY_LOW, "LOCK=front"), ...);
 * Fields the catalog text uses (@LOCK@, @STEP@...) are listed with each id; a test
 * checks that every id here has exactly one catalog entry and the reverse.
 */

/* ---- findings of the diagnosis (LOCK, FINDING, EVIDENCE, NEXT_STEP) ---- */
#define LOCKHUB_MESSAGE_NEEDS_REPAIR           "d18ad3af7027414291640405d521f77a"
#define LOCKHUB_MESSAGE_BATTERY_CRITICAL       "97c4efa2044f405da76732493cf973b0"
#define LOCKHUB_MESSAGE_BATTERY_LOW            "775a921f1fb146dcbd74bf4d90738a6e"
#define LOCKHUB_MESSAGE_BATTERY_DRAIN_FAST     "36a4fa63fc7b454fb9e244cc5c64a072"
#define LOCKHUB_MESSAGE_BATTERY_DRAIN_ABNORMAL "1d2198553a85421199c0a0fd0e86498f"
#define LOCKHUB_MESSAGE_ACCESSORY_BATTERY      "456fcaa989de44f38d516ce4af69eb7e"
#define LOCKHUB_MESSAGE_NOT_SEEN               "f5d47d8881134eff80841141fc1eb5ca"
#define LOCKHUB_MESSAGE_SIGNAL_WEAK            "dbdbed677adc4c4fb3d5d5154d00f42f"
#define LOCKHUB_MESSAGE_LINK_UNSTABLE          "48bedcc8a9a54480a326ab67b5627ab2"
#define LOCKHUB_MESSAGE_JAMS                   "88c2e0ad019641809b01a6ece5562af0"
#define LOCKHUB_MESSAGE_MOTOR_SLOW             "d6869537b72b4015b86c04c3687e05f6"
#define LOCKHUB_MESSAGE_DOOR_OPEN_LOCKED       "4ac510d83c32403ab7bdac66bb9b05f4"
#define LOCKHUB_MESSAGE_UNCALIBRATED           "e2cd5ef8ea0241d0b804d7a4290fe034"
#define LOCKHUB_MESSAGE_FIRMWARE_BAD           "2f7449d966c944c991ec2e2e6aea9e95"
#define LOCKHUB_MESSAGE_FIRMWARE_OUTDATED      "e0391604cf564ee08877dfef153dd7eb"
#define LOCKHUB_MESSAGE_RECOVERY_EXHAUSTED     "5101d140fd214a6ebf5f64964cff6d31"
#define LOCKHUB_MESSAGE_PIN_REJECTED           "07a28862c2b147ee98a92c134497a20e"

/* ---- recovery ladder outcomes (LOCK, ADAPTER, STEP, ATTEMPT, OUTCOME, DURATION_USEC, REASON) ---- */
#define LOCKHUB_MESSAGE_RECOVERY_RECOVERED    "6e7c70141fd34cb78acb28a9a954375d"
#define LOCKHUB_MESSAGE_RECOVERY_STEP_FAILED  "5ed6ba5e794642ffa1bb6c25409bf024"
#define LOCKHUB_MESSAGE_RECOVERY_STEP_SKIPPED "a1bd7a78538b4206bdbae081c4eea91e"
#define LOCKHUB_MESSAGE_RECOVERY_ABORTED      "d583ebb9ebe441b6b19ecbbac3922818"
#define LOCKHUB_MESSAGE_RECOVERY_NEEDS_REPAIR "6e5d806467b44e25aad7af8df4963644"
#define LOCKHUB_MESSAGE_RECOVERY_GAVE_UP      "9c58aeece95c480799dbb7713ddc851a"
#define LOCKHUB_MESSAGE_BLUEZ_RESTARTED       "3f85c1ec89904dddbd79f072321b9497"
#define LOCKHUB_MESSAGE_ADAPTER_AWAY          "54acd5ff3cf546f880ec2445ea29c9fa"
#define LOCKHUB_MESSAGE_REPROVISIONED         "440dc7cbc8b5402db6fbecfd11983b64"
