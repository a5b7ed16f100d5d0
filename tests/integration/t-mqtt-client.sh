#!/bin/sh
# MQTT client (src/mqtt/mqtt-client.c) against a real mosquitto, through
# tests/tools/mqtt-probe: birth and will (kill -9 and clean stop), MQTT 3.1.1 and 5,
# broker restart (reconnect, re-subscribe, birth again, retained messages held while
# down), password from a credential directory and from a file, wrong password, TLS
# with generated certificates (host name through the resolver thread, IP address,
# client certificate), wrong CA, insecure mode, Unix socket, unresolvable host.
. "$LOCKHUB_TOP/tests/integration/lib.sh"

PATH="$PATH:/usr/sbin:/sbin"
command -v mosquitto >/dev/null 2>&1 || skip "mosquitto is not installed"
command -v mosquitto_sub >/dev/null 2>&1 || skip "mosquitto-clients is not installed"
command -v mosquitto_passwd >/dev/null 2>&1 || skip "mosquitto_passwd is not installed"
command -v openssl >/dev/null 2>&1 || skip "openssl is not installed"
P="$BUILD/tools/mqtt-probe"
[ -x "$P" ] || { echo "missing $P (make all)"; exit 1; }

# start_broker NAME: mosquitto in the foreground with $T/NAME.conf; sets broker_pid.
# Started as root, mosquitto would switch to the "mosquitto" user, which cannot read
# files in $T: stay whoever we are.
start_broker() {
	grep -q "^user " "$T/$1.conf" || printf "user %s\n" "$(id -un)" >>"$T/$1.conf"
	mosquitto -c "$T/$1.conf" >>"$T/$1.log" 2>&1 &
	broker_pid=$!
	track $broker_pid
}
port_open() {
	python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
		"$1" 2>/dev/null
}
# probe NAME COMMAND...: runs COMMAND (the probe, maybe behind env) in the background,
# stdout in $T/NAME.out, stderr in $T/NAME.err; sets probe_pid
probe() {
	_n=$1
	shift
	# distinct client ids: the broker drops a client when another one takes its id
	"$@" --client-id "probe-$_n" >"$T/$_n.out" 2>"$T/$_n.err" </dev/null &
	probe_pid=$!
	track $probe_pid
}
has_line() { grep -qx -- "$2" "$T/$1.out"; }
count_lines() { grep -cx -- "$2" "$T/$1.out"; }
absent() { ! grep -q -- "$1" "$2"; }
# retained PORT TOPIC: the retained payload of TOPIC ("" if none)
retained() { mosquitto_sub -p "$1" -t "$2" -C 1 -W 2 2>/dev/null; }
retained_is() { test "$(retained "$1" "$2")" = "$3"; }

ONLINE='{"state":"online"}'
OFFLINE='{"state":"offline"}'

# ---- plain broker: birth, will, MQTT 3.1.1 and 5 -----------------------------------
PORT=$(free_port)
cat >"$T/plain.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
EOF
start_broker plain
plain_pid=$broker_pid
check "broker listens on 127.0.0.1:$PORT" wait_for 10 port_open "$PORT"

mosquitto_sub -p "$PORT" -t '#' -v >"$T/watch.log" 2>&1 &
track $!

probe a "$P" --host 127.0.0.1 --port "$PORT" --client-id probe-a \
	--will-topic lockhub/bridge/state --will-payload "$OFFLINE" \
	--birth-topic lockhub/bridge/state --birth-payload "$ONLINE" --sub 'test/a/#'
a_pid=$probe_pid
check "3.1.1: connects" wait_for 10 has_line a connected
check "3.1.1: retained birth on the broker" wait_for 5 retained_is "$PORT" lockhub/bridge/state "$ONLINE"
mosquitto_pub -p "$PORT" -t test/a/x -m hello
check "3.1.1: message on a subscribed topic arrives" wait_for 5 has_line a "message test/a/x hello"
kill -9 $a_pid
check "broker publishes the will after kill -9" \
	wait_for 10 grep -qx "lockhub/bridge/state $OFFLINE" "$T/watch.log"
check "the will is retained" retained_is "$PORT" lockhub/bridge/state "$OFFLINE"

probe b "$P" --host 127.0.0.1 --port "$PORT" --protocol 5 --client-id probe-b \
	--will-topic lockhub5/bridge/state --will-payload "$OFFLINE" \
	--birth-topic lockhub5/bridge/state --birth-payload "$ONLINE" --sub test/b
b_pid=$probe_pid
check "5: connects" wait_for 10 has_line b connected
check "5: retained birth on the broker" wait_for 5 retained_is "$PORT" lockhub5/bridge/state "$ONLINE"
mosquitto_pub -p "$PORT" -V 5 -t test/b -m five
check "5: message arrives" wait_for 5 has_line b "message test/b five"
kill -TERM $b_pid
wait_exit $b_pid 10
check "clean stop exits 0 (got $exit_code)" test "$exit_code" = 0
check "clean stop publishes the offline state itself" retained_is "$PORT" lockhub5/bridge/state "$OFFLINE"
check "clean stop is logged" grep -q 'disconnected from broker' "$T/b.err"

# ---- broker restart ----------------------------------------------------------------
mkfifo "$T/r.in"
"$P" --host 127.0.0.1 --port "$PORT" --client-id probe-r --reconnect-min 1 --reconnect-max 2 --queue-max 2 \
	--birth-topic r/state --birth-payload online --sub test/r <"$T/r.in" >"$T/r.out" 2>"$T/r.err" &
r_pid=$!
track $r_pid
exec 3>"$T/r.in"
check "restart: connects" wait_for 10 has_line r connected
echo "pub test/r/# x" >&3
check "a topic with wildcards is refused (-EINVAL)" wait_for 5 has_line r "publish -22"
kill -TERM $plain_pid
wait_exit $plain_pid 10
check "restart: the loss is reported" wait_for 10 grep -q '^disconnected ' "$T/r.out"
check "restart: the loss is logged" grep -q 'lost the connection to broker' "$T/r.err"
# Held while down: newest per topic, at most --queue-max 2 topics, oldest dropped.
for m in "r/old o" "r/held v1" "r/held v2" "r/new n"; do echo "pubr $m" >&3; done
held4() { test "$(count_lines r "publish 1")" = 4; }
check "restart: retained publishes while down are held (1)" wait_for 5 held4
check "restart: a full hold queue is logged" grep -q 'dropping the oldest (r/old)' "$T/r.err"
echo "pub r/event e1" >&3
check "restart: a non-retained publish while down is refused (-ENOTCONN)" wait_for 5 has_line r "publish -107"
check "restart: failed attempts are logged" wait_for 10 grep -q 'cannot connect to broker' "$T/r.err"
sleep 2
check "restart: repeated failures are logged once" test "$(grep -c 'cannot connect to broker' "$T/r.err")" = 1
start_broker plain
plain_pid=$broker_pid
connected_twice() { test "$(count_lines r connected)" -ge 2; }
check "restart: reconnects" wait_for 15 connected_twice
check "restart: birth sent again" wait_for 5 retained_is "$PORT" r/state online
check "restart: held retained message sent, newest value" wait_for 5 retained_is "$PORT" r/held v2
check "restart: held retained message sent (2)" retained_is "$PORT" r/new n
check "restart: the oldest held message was dropped" retained_is "$PORT" r/old ""
check "restart: non-retained message was not sent later" test -z "$(mosquitto_sub -p "$PORT" -t r/event -C 1 -W 1 2>/dev/null)"
mosquitto_pub -p "$PORT" -t test/r -m after-restart
check "restart: re-subscribed" wait_for 5 has_line r "message test/r after-restart"
echo "pub test/r own" >&3
check "restart: publishes again" wait_for 5 has_line r "message test/r own"
echo stop >&3
wait_exit $r_pid 10
check "restart: stop command exits 0 (got $exit_code)" test "$exit_code" = 0
exec 3>&-

# DNS never blocks the loop: with a getaddrinfo() that takes 3s (a preloaded shim,
# when a compiler is at hand), the probe answers commands while the name is being
# resolved, connects afterwards, and can be freed in the middle of a lookup.
cat >"$T/slow-dns.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <unistd.h>
typedef int gai_fn(const char *, const char *, const struct addrinfo *, struct addrinfo **);
int getaddrinfo(const char *n, const char *s, const struct addrinfo *h, struct addrinfo **r)
{
	gai_fn *real = (gai_fn *) dlsym(RTLD_NEXT, "getaddrinfo");
	sleep(3);
	return real(n, s, h, r);
}
EOF
if ${CC:-cc} -shared -fPIC -o "$T/slow-dns.so" "$T/slow-dns.c" -ldl 2>/dev/null; then
	slow_dns() { # slow_dns NAME PROBE-ARGS...: a probe with slow DNS, commands on fd 4
		_n=$1
		shift
		mkfifo "$T/$_n.in"
		env LD_PRELOAD="$T/slow-dns.so" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
			"$P" --client-id "probe-$_n" --debug "$@" <"$T/$_n.in" >"$T/$_n.out" 2>"$T/$_n.err" &
		probe_pid=$!
		track $probe_pid
		exec 4>"$T/$_n.in"
	}
	slow_dns dns --host localhost --port "$PORT"
	check "slow DNS: resolving" wait_for 5 grep -q 'waiting -> resolving' "$T/dns.err"
	echo "pub x y" >&4
	check "slow DNS: the loop answers during the lookup" wait_for 1 has_line dns "publish -107"
	check "slow DNS: not connected yet then" absent connected "$T/dns.out"
	check "slow DNS: connects once resolved" wait_for 10 has_line dns connected
	echo stop >&4
	exec 4>&-

	slow_dns dnsfree --host localhost --port "$PORT"
	dnsfree_pid=$probe_pid
	check "slow DNS: resolving (2)" wait_for 5 grep -q 'waiting -> resolving' "$T/dnsfree.err"
	echo free >&4
	check "slow DNS: freed during the lookup without waiting" wait_for 1 has_line dnsfree freed
	sleep 4 # the orphaned lookup finishes and cleans up after itself
	echo quit >&4
	exec 4>&-
	wait_exit $dnsfree_pid 10
	check "slow DNS: exits cleanly after the orphaned lookup (got $exit_code)" test "$exit_code" = 0
	check "slow DNS: never connected after being freed" absent connected "$T/dnsfree.out"
else
	# scripts/install-deps.sh installs gcc; say so when this part did not run
	echo "skipped: slow DNS: no C compiler (${CC:-cc}) to build the getaddrinfo() shim"
fi

# A broker that stops answering (SIGSTOP) is noticed by the keepalive timer.
probe ka "$P" --host 127.0.0.1 --port "$PORT" --keepalive 5 --reconnect-min 1 --reconnect-max 2
check "keepalive: connects" wait_for 10 has_line ka connected
kill -STOP $plain_pid
check "keepalive: a silent broker is detected" \
	wait_for 25 grep -q 'lost the connection to broker .*no answer from the broker within the keepalive' "$T/ka.err"
check "keepalive: the loss is reported" grep -qx 'disconnected ETIMEDOUT' "$T/ka.out"
kill -CONT $plain_pid
ka_twice() { test "$(count_lines ka connected)" -ge 2; }
check "keepalive: reconnects when the broker answers again" wait_for 40 ka_twice

# ---- password -----------------------------------------------------------------------
PPORT=$(free_port)
mosquitto_passwd -b -c "$T/passwd" hub 's3cret-pw' >/dev/null 2>&1
cat >"$T/pw.conf" <<EOF
listener $PPORT 127.0.0.1
allow_anonymous false
password_file $T/passwd
persistence false
EOF
start_broker pw
check "password broker listens" wait_for 10 port_open "$PPORT"
mkdir -p "$T/creds" "$T/creds-bad" "$T/creds-none"
printf 's3cret-pw\n' >"$T/creds/mqtt-password"
printf 'wrong-pw\n' >"$T/creds-bad/mqtt-password"
printf 'wrong-pw\n' >"$T/wrong-file"
printf 's3cret-pw\n' >"$T/right-file"

probe pw env CREDENTIALS_DIRECTORY="$T/creds" "$P" --host 127.0.0.1 --port "$PPORT" --username hub \
	--password-file "$T/wrong-file" --debug
check "password from the credential (over PasswordFile) connects" wait_for 10 has_line pw connected
check "password is never logged" absent s3cret "$T/pw.err"

probe pwfile env CREDENTIALS_DIRECTORY="$T/creds-none" "$P" --host 127.0.0.1 --port "$PPORT" --username hub \
	--password-file "$T/right-file"
check "password from PasswordFile when there is no credential" wait_for 10 has_line pwfile connected

probe pwbad env CREDENTIALS_DIRECTORY="$T/creds-bad" "$P" --host 127.0.0.1 --port "$PPORT" --username hub \
	--reconnect-min 1 --debug
check "wrong password: refused with a clear line" wait_for 10 \
	grep -q 'cannot connect to broker .*refused the connection: Connection Refused: not authorised; check Username= and the password' \
	"$T/pwbad.err"
check "wrong password: never connected" absent connected "$T/pwbad.out"
check "wrong password: not logged either" absent wrong-pw "$T/pwbad.err"

probe pwbad5 env CREDENTIALS_DIRECTORY="$T/creds-bad" "$P" --host 127.0.0.1 --port "$PPORT" --username hub \
	--protocol 5
check "wrong password, MQTT 5: refused with a clear line" wait_for 10 \
	grep -q 'cannot connect to broker .*refused the connection: .*; check Username= and the password' "$T/pwbad5.err"

probe pwnone env CREDENTIALS_DIRECTORY="$T/creds-none" "$P" --host 127.0.0.1 --port "$PPORT"
check "anonymous: refused" wait_for 10 grep -q 'refused the connection' "$T/pwnone.err"

# ---- TLS ----------------------------------------------------------------------------
mkcert() { # mkcert NAME SUBJECT [CA] [EXTFILE]: EC key + certificate, self-signed without CA
	if [ -z "${3:-}" ]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
			-keyout "$T/$1.key" -out "$T/$1.crt" -subj "$2" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign 2>/dev/null
	else
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$T/$1.key" -out "$T/$1.csr" -subj "$2" 2>/dev/null &&
			openssl x509 -req -in "$T/$1.csr" -CA "$T/$3.crt" -CAkey "$T/$3.key" -CAcreateserial \
				-days 2 -out "$T/$1.crt" ${4:+-extfile "$4"} 2>/dev/null
	fi
}
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$T/server.ext"
printf 'extendedKeyUsage=clientAuth\n' >"$T/client.ext"
mkcert ca "/CN=lockhub test CA" &&
	mkcert server "/CN=localhost" ca "$T/server.ext" &&
	mkcert client "/CN=hub" ca "$T/client.ext" &&
	mkcert otherca "/CN=some other CA"
check "test certificates generated" test -s "$T/server.crt" -a -s "$T/client.crt" -a -s "$T/otherca.crt"

TPORT=$(free_port)
MPORT=$(free_port)
cat >"$T/tls.conf" <<EOF
per_listener_settings true
listener $TPORT 127.0.0.1
allow_anonymous true
cafile $T/ca.crt
certfile $T/server.crt
keyfile $T/server.key
listener $MPORT 127.0.0.1
allow_anonymous true
cafile $T/ca.crt
certfile $T/server.crt
keyfile $T/server.key
require_certificate true
persistence false
EOF
start_broker tls
check "TLS broker listens" wait_for 10 port_open "$TPORT"

probe tls "$P" --host localhost --port "$TPORT" --tls --cafile "$T/ca.crt" --sub test/tls
check "TLS by host name (resolver thread): connects" wait_for 10 has_line tls connected
mosquitto_pub -h localhost -p "$TPORT" --cafile "$T/ca.crt" -t test/tls -m secure
check "TLS: message arrives" wait_for 5 has_line tls "message test/tls secure"

probe tlsip "$P" --host 127.0.0.1 --port "$TPORT" --tls --cafile "$T/ca.crt"
check "TLS by IP address (certificate names it): connects" wait_for 10 has_line tlsip connected

mkdir "$T/capath"
cp "$T/otherca.crt" "$T/ca.crt" "$T/capath/"
if openssl rehash "$T/capath" 2>/dev/null; then
	probe tlsdir "$P" --host localhost --port "$TPORT" --tls --capath "$T/capath"
	check "TLS with CAPath (a hashed directory): connects" wait_for 10 has_line tlsdir connected
else
	echo "skipped: TLS with CAPath: 'openssl rehash' is not available (OpenSSL 1.1 or later has it)"
fi

probe tlsbad "$P" --host localhost --port "$TPORT" --tls --cafile "$T/otherca.crt"
check "wrong CA: refused with a clear line naming the CA file" wait_for 10 \
	grep -q "cannot connect to broker localhost:$TPORT: TLS: the broker's certificate was not accepted (certificate verify failed): .*CAFile=$T/otherca.crt" \
	"$T/tlsbad.err"
check "wrong CA: never connected" absent connected "$T/tlsbad.out"

probe tlsins "$P" --host localhost --port "$TPORT" --tls --cafile "$T/otherca.crt" --insecure
check "insecure mode: connects despite the wrong CA" wait_for 10 has_line tlsins connected
check "insecure mode: warned" grep -q 'TLSInsecure=yes' "$T/tlsins.err"

probe mtls "$P" --host localhost --port "$MPORT" --tls --cafile "$T/ca.crt" \
	--cert "$T/client.crt" --key "$T/client.key"
check "client certificate: connects" wait_for 10 has_line mtls connected
probe mtlsno "$P" --host localhost --port "$MPORT" --tls --cafile "$T/ca.crt"
# With TLS 1.3 the broker's alert may be lost to the reset that follows it: then
# only "protocol error" is known, still pointing at the client certificate.
check "no client certificate: refused with a clear line" wait_for 10 grep -q -E \
	"cannot connect to broker localhost:$MPORT: TLS(: the broker requires a client certificate| failed \(protocol error\): check CertFile=)" \
	"$T/mtlsno.err"
check "no client certificate: never connected" absent connected "$T/mtlsno.out"

"$P" --host localhost --port "$TPORT" --tls --cafile "$T/missing-ca.crt" >/dev/null 2>"$T/noca.err"
rc=$?
check "missing CA file: fails at once (rc $rc)" test $rc = 1
check "missing CA file: names it" grep -q "cannot read CAFile=$T/missing-ca.crt" "$T/noca.err"

# ---- Unix socket, unresolvable host ---------------------------------------------------
cat >"$T/unix.conf" <<EOF
listener 0 $T/mq.sock
allow_anonymous true
persistence false
EOF
start_broker unix
check "Unix socket broker listens" wait_for 10 test -S "$T/mq.sock"
probe unix "$P" --socket "$T/mq.sock" --sub test/u --birth-topic u/state --birth-payload up
check "Unix socket: connects" wait_for 10 has_line unix connected
mosquitto_pub --unix "$T/mq.sock" -t test/u -m via-socket
check "Unix socket: message arrives" wait_for 5 has_line unix "message test/u via-socket"
unix_birth_is() { test "$(mosquitto_sub --unix "$T/mq.sock" -t u/state -C 1 -W 2 2>/dev/null)" = "$1"; }
check "Unix socket: retained birth" wait_for 5 unix_birth_is up

probe nx "$P" --host no-such-broker.invalid --port "$PORT"
check "unresolvable host: a clear line" wait_for 20 grep -q 'cannot resolve "no-such-broker.invalid"' "$T/nx.err"

finish
