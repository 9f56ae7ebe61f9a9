"""An OCPP 1.6J central system for the tests, built on the `ocpp` package (PyPI) and `websockets`.

It runs in a thread with its own asyncio loop; the test drives it with blocking helpers. Every message the
charge point sends is validated by `ocpp` against the OCPP 1.6 JSON schemas and recorded in order.
"""
import asyncio
import base64
import http
import json
import datetime
import threading
import time

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as CP
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus


class RecordingCP(CP):
    def __init__(self, cp_id, ws, server):
        super().__init__(cp_id, ws)
        self.server = server
        self.next_tx = server.next_tx

    async def route_message(self, raw_msg):
        # Answers to frames a test sent raw (ids starting "raw-") are kept for it, not routed.
        if raw_msg.startswith('[3,"raw-') or raw_msg.startswith('[4,"raw-'):
            with self.server.lock:
                self.server.raw_answers.append(raw_msg)
            return
        await super().route_message(raw_msg)

    def record(self, action, payload):
        with self.server.lock:
            self.server.received.append((time.monotonic(), action, payload))

    @on(Action.boot_notification)
    def on_boot(self, charge_point_vendor, charge_point_model, **kw):
        self.record("BootNotification", dict(vendor=charge_point_vendor, model=charge_point_model, **kw))
        return call_result.BootNotification(current_time=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                                            interval=self.server.heartbeat_interval, status=RegistrationStatus.accepted)

    @on(Action.heartbeat)
    def on_heartbeat(self, **kw):
        self.record("Heartbeat", kw)
        return call_result.Heartbeat(current_time=datetime.datetime.now(datetime.timezone.utc).isoformat())

    @on(Action.status_notification)
    def on_status(self, connector_id, error_code, status, **kw):
        self.record("StatusNotification", dict(connector_id=connector_id, error_code=error_code, status=status, **kw))
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag, **kw):
        self.record("Authorize", dict(id_tag=id_tag))
        if self.server.authorize_delay:
            await asyncio.sleep(self.server.authorize_delay)
        ok = id_tag in self.server.accepted_tags
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted if ok else AuthorizationStatus.invalid})

    @on(Action.start_transaction)
    def on_start(self, connector_id, id_tag, meter_start, timestamp, **kw):
        with self.server.lock:
            tx = self.server.next_tx
            self.server.next_tx += 1
        self.record("StartTransaction", dict(connector_id=connector_id, id_tag=id_tag, meter_start=meter_start, timestamp=timestamp, transaction_id=tx, **kw))
        ok = not self.server.start_checks_tags or id_tag in self.server.accepted_tags
        return call_result.StartTransaction(transaction_id=tx, id_tag_info={"status": AuthorizationStatus.accepted if ok else AuthorizationStatus.invalid})

    @on(Action.meter_values)
    def on_meter(self, connector_id, meter_value, **kw):
        self.record("MeterValues", dict(connector_id=connector_id, meter_value=meter_value, **kw))
        return call_result.MeterValues()

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, status, **kw):
        self.record("DiagnosticsStatusNotification", dict(status=status))
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status, **kw):
        self.record("FirmwareStatusNotification", dict(status=status))
        return call_result.FirmwareStatusNotification()

    @on(Action.sign_certificate)
    def on_sign_certificate(self, csr, **kw):
        self.record("SignCertificate", {"csr": csr})
        return call_result.SignCertificate(status="Accepted")

    @on(Action.signed_firmware_status_notification)
    def on_signed_firmware_status(self, status, **kw):
        self.record("SignedFirmwareStatusNotification", {"status": status, **kw})
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status(self, status, **kw):
        self.record("LogStatusNotification", {"status": status, **kw})
        return call_result.LogStatusNotification()

    @on(Action.security_event_notification)
    def on_security_event(self, type, timestamp, **kw):
        self.record("SecurityEventNotification", dict(type=type, timestamp=timestamp, **kw))
        return call_result.SecurityEventNotification()

    @on(Action.stop_transaction)
    def on_stop(self, meter_stop, timestamp, transaction_id, **kw):
        self.record("StopTransaction", dict(meter_stop=meter_stop, timestamp=timestamp, transaction_id=transaction_id, **kw))
        with self.server.lock:
            refuse = self.server.refuse.get("StopTransaction", 0)
            if refuse:
                self.server.refuse["StopTransaction"] = refuse - 1
        if refuse:
            # The ocpp package answers an exception in a handler with a CALLERROR (InternalError).
            raise RuntimeError("refused by the test's central system")
        return call_result.StopTransaction()


class CentralSystem:
    def __init__(self, port=0, heartbeat_interval=30, accepted_tags=("TAG-OK",), ssl_context=None, start_checks_tags=False, refuse=None,
                 basic_auth=None, authorize_delay=0):
        # authorize_delay: seconds before an Authorize is answered (a slow back office).
        self.authorize_delay = authorize_delay
        # basic_auth: (charge point id, key bytes): HTTP Basic required at the upgrade (security profiles 1
        # and 2); a request without it or with another is answered 401 and counted in `unauthorized`.
        # "absent": a request with any Authorization header is answered 401 (profile 3).
        self.basic_auth = basic_auth
        self.unauthorized = 0
        # start_checks_tags: StartTransaction answers Invalid for an idTag not in accepted_tags (else every
        # one is Accepted). refuse: {action: n}: the first n such calls are answered with a CALLERROR.
        self.start_checks_tags = start_checks_tags
        self.refuse = dict(refuse or {})
        self.port = port
        self.heartbeat_interval = heartbeat_interval
        self.accepted_tags = set(accepted_tags)
        self.ssl_context = ssl_context
        self.received = []
        self.raw_answers = []
        self.lock = threading.Lock()
        self.next_tx = 1001
        self.cp = None
        self.ws = None
        self.connections = 0
        # The DER certificate each TLS connection's charge point presented (None: none, or plain ws://).
        self.peer_certificates = []
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.started.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self):
        self.stop_event = asyncio.Event()
        async with websockets.serve(self._on_connect, "127.0.0.1", self.port, subprotocols=["ocpp1.6"], ssl=self.ssl_context,
                                    process_request=self._check_auth) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.started.set()
            await self.stop_event.wait()

    def _check_auth(self, connection, request):
        if self.basic_auth is None:
            return None
        if self.basic_auth == "absent":              # profile 3: any HTTP Basic header is refused
            if request.headers.get("Authorization") is None:
                return None
            with self.lock:
                self.unauthorized += 1
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "no Basic credentials on profile 3\n")
        cp_id, key = self.basic_auth
        want = "Basic " + base64.b64encode(cp_id.encode() + b":" + key).decode()
        if request.headers.get("Authorization") == want:
            return None
        with self.lock:
            self.unauthorized += 1
        return connection.respond(http.HTTPStatus.UNAUTHORIZED, "wrong or missing credentials\n")

    async def _on_connect(self, ws):
        cp_id = ws.request.path.strip("/")
        self.connections += 1
        tls = ws.transport.get_extra_info("ssl_object")
        self.peer_certificates.append(tls.getpeercert(binary_form=True) if tls else None)
        self.ws = ws
        self.cp = RecordingCP(cp_id, ws, self)
        self.cp_id = cp_id
        try:
            await self.cp.start()
        except websockets.exceptions.ConnectionClosed:
            pass

    # blocking helpers for tests
    def call(self, message, timeout=15):
        fut = asyncio.run_coroutine_threadsafe(self.cp.call(message), self.loop)
        return fut.result(timeout)

    def send_raw(self, text):
        """Sends a text frame as it is (hostile or careless central-system input)."""
        asyncio.run_coroutine_threadsafe(self.ws.send(text), self.loop).result(5)

    def send_bytes(self, data):
        """Writes bytes onto the connection under the WebSocket layer (a hand-made frame header)."""
        self.loop.call_soon_threadsafe(self.ws.transport.write, data)

    def raw_answer(self, call_id, timeout=10):
        """The charge point's answer (CALLRESULT or CALLERROR) to a raw frame, parsed; None if none came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for a in self.raw_answers:
                    m = json.loads(a)
                    if m[1] == call_id:
                        return m
            time.sleep(0.05)
        return None

    def drop(self):
        """Closes the charge point's connection abruptly (TCP reset, no close handshake)."""
        def _drop():
            self.ws.transport.abort()
        self.loop.call_soon_threadsafe(_drop)

    def stop(self):
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(5)

    def messages(self, action=None):
        with self.lock:
            return [m for m in self.received if action is None or m[1] == action]

    def wait_for(self, action, predicate=lambda p: True, timeout=30, after=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, a, p in self.messages(action):
                if t >= after and predicate(p):
                    return p
            time.sleep(0.05)
        raise AssertionError(f"no {action} matching within {timeout} s; got {[m[1] for m in self.messages()][-20:]}")
