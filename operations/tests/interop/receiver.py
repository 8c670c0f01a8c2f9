"""A third-party MLLP receiver for Ferrocount's delivery tests: python-hl7's asyncio MLLP
server, validating every message it receives with hl7apy (strict, HL7 v2.5.1).

Usage: receiver.py PORT_FILE LOG_FILE SCRIPT SLOW_SECONDS [CERT_FILE KEY_FILE]

With CERT_FILE and KEY_FILE (PEM) it speaks MLLP over TLS with that certificate (Python's ssl
module, the server's defaults). It listens on 127.0.0.1 at a free port, writes the port to PORT_FILE, and answers the n-th
message it receives as the n-th word of SCRIPT (comma-separated; `AA` after the script ends):
`AA`, `AE`, `AR` (an acknowledgement with that code; AE and AR with a reason), `slow` (AA after
SLOW_SECONDS), `drop` (closes the connection without answering). A message hl7apy finds invalid
is answered AR with hl7apy's reason whatever the script says. Every message is logged to
LOG_FILE as one JSON line: control id, OBX-11 statuses, the answer, whether it was valid, the
raw text, and when (`at`, seconds on this process's monotonic clock).

Every acknowledgement is logged to LOG_FILE.acks as one JSON line when it was written to a
connection that was still open: control id, code, `at`. A slow answer whose sender went away while
it was held (a killed appliance) is not sent: its line has code null and `gone` true. Only an
acknowledged message counts as accepted (a LIS commits a message when it acknowledges it).
"""

import asyncio
import json
import ssl
import sys
import time

import hl7
from hl7.mllp import start_hl7_server
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message


def validate(text):
    try:
        message = parse_message(
            text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True
        )
        message.validate()
        return None
    except Exception as error:  # hl7apy raises several kinds; each is a finding
        return f"{type(error).__name__}: {error}"


def ack(message, code, text=None):
    reply = message.create_ack(ack_code=code)
    if text:
        reply.segment("MSA").assign_field(text.replace("|", "/").replace("^", " ")[:80], 3)
    return reply


async def main():
    port_file, log_file, script, slow = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    plan = [word for word in script.split(",") if word]
    state = {"n": 0}

    def log(record, path=log_file):
        record["at"] = time.monotonic()
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")

    def log_ack(control_id, code, gone=False):
        log({"control_id": control_id, "code": code, "gone": gone}, log_file + ".acks")

    async def client(reader, writer):
        try:
            while not writer.is_closing():
                block = await reader.readblock()
                text = block.decode("utf-8")
                message = hl7.parse(text)
                control_id = str(message.segment("MSH")(10))
                statuses = [str(obx(11)) for obx in message.segments("OBX")]
                invalid = validate(text)
                behaviour = plan[state["n"]] if state["n"] < len(plan) else "AA"
                state["n"] += 1
                if invalid:
                    behaviour = "invalid"
                log({"control_id": control_id, "statuses": statuses, "answer": behaviour,
                     "invalid": invalid, "raw": text})
                if behaviour == "drop":
                    writer.close()
                    return
                if behaviour == "slow":
                    await asyncio.sleep(slow)
                    behaviour = "AA"
                    if reader.at_eof():
                        # The sender went away while the answer was held: nothing is acknowledged.
                        log_ack(control_id, None, gone=True)
                        return
                if behaviour == "invalid":
                    code = "AR"
                    writer.writemessage(ack(message, "AR", invalid))
                elif behaviour in ("AE", "AR"):
                    code = behaviour
                    writer.writemessage(ack(message, behaviour, f"test receiver says {behaviour}"))
                else:
                    code = "AA"
                    writer.writemessage(ack(message, "AA"))
                await writer.drain()
                log_ack(control_id, code)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    tls = None
    if len(sys.argv) > 6:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(sys.argv[5], sys.argv[6])
    server = await start_hl7_server(client, "127.0.0.1", 0, encoding="utf-8", ssl=tls)
    port = server.sockets[0].getsockname()[1]
    with open(port_file + ".tmp", "w", encoding="utf-8") as out:
        out.write(str(port))
    import os
    os.replace(port_file + ".tmp", port_file)
    async with server:
        # Bounded: a receiver left behind stops by itself after ten minutes.
        await asyncio.sleep(600)


asyncio.run(main())
