#!/usr/bin/env python3
"""A hostile home gateway for tests/net/portmap_hostile.sh, run in the NAT's
namespace: it answers SSDP discovery (UPnP), its description and SOAP
control URLs over HTTP, and NAT-PMP/PCP (port 5351), each wrongly in its
own way.

    igd_hostile.py LAN_IP MODE SECONDS

MODE:
  ssdp  SSDP answers with no LOCATION, 8 kB of header lines and binary junk
  desc  a good SSDP answer; the description is 64 kB of broken XML
  soap  a good description; every SOAP action answers 200 with junk
  ext   a good description and SOAP that says Connected, external address
        0.0.0.0, and grants every AddPortMapping
In every mode, NAT-PMP and PCP requests get junk of random sizes.

Prints "ready" once every socket is open, then one line per request it
saw ("ssdp M-SEARCH from IP", "http GET PATH", "soap ACTION", "pmp N
bytes"), and exits after SECONDS.
"""
import http.server
import os
import random
import socket
import sys
import threading
import time

SSDP_GROUP, SSDP_PORT, HTTP_PORT, PMP_PORT = "239.255.255.250", 1900, 5000, 5351
WANIP = "urn:schemas-upnp-org:service:WANIPConnection:1"


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def description(ip):
    return ('<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0">'
            "<specVersion><major>1</major><minor>0</minor></specVersion>"
            "<URLBase>http://%s:%d/</URLBase><device>"
            "<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>"
            "<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>"
            # (libminiupnpc calls a device an IGD by this service)
            "<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>"
            "<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId><controlURL>/ctl/CmnIfCfg</controlURL>"
            "<eventSubURL>/evt/CmnIfCfg</eventSubURL><SCPDURL>/WANCfg.xml</SCPDURL></service></serviceList>"
            "<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>"
            "<serviceList><service><serviceType>%s</serviceType>"
            "<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL>"
            "<eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>"
            "</device></deviceList></device></deviceList></device></root>" % (ip, HTTP_PORT, WANIP))


def soap(action, body):
    return ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
            '<u:%sResponse xmlns:u="%s">%s</u:%sResponse></s:Body></s:Envelope>' % (action, WANIP, body, action))


def junk(n):
    return bytes(random.getrandbits(8) for _ in range(n))


def make_handler(ip, mode):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, body):
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            say("http GET %s" % self.path)
            if mode == "desc":
                broken = b"<root><device>" + b"<a x='" * 2000 + junk(40000) + b"</service>" * 1000
                self.reply(broken[:65536])
            else:
                self.reply(description(ip).encode())

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0") or "0")
            self.rfile.read(min(n, 65536))
            action = self.headers.get("SOAPAction", "").strip('"').split("#")[-1]
            say("soap %s" % action)
            if mode == "soap":
                self.reply(b"<s:Envelope><s:Body><u:" + junk(3000) + b"</NewExternalIPAddress>")
            elif action == "GetStatusInfo":
                self.reply(soap(action, "<NewConnectionStatus>Connected</NewConnectionStatus>"
                                "<NewLastConnectionError>ERROR_NONE</NewLastConnectionError>"
                                "<NewUptime>1000</NewUptime>").encode())
            elif action == "GetExternalIPAddress":
                self.reply(soap(action, "<NewExternalIPAddress>0.0.0.0</NewExternalIPAddress>").encode())
            else:
                self.reply(soap(action, "").encode())
    return Handler


def ssdp_reply(ip, mode, request):
    st = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
    for line in request.split(b"\r\n"):
        if line.lower().startswith(b"st:"):
            st = line[3:].strip().decode("latin-1")
    if mode == "ssdp":
        return (b"HTTP/1.1 200 OK\r\n" + b"X-Junk: " + b"y" * 8000 + b"\r\nLOCATI" + junk(200)
                + b"\r\nST:\r\nUSN\r\n\r\n")
    return ("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: %s\r\nUSN: uuid:3d3cec3a-8cf0-11e0-98ee-001a6bd2d07d::%s\r\n"
            "EXT:\r\nSERVER: lab/1 UPnP/1.1 hostile/1\r\nLOCATION: http://%s:%d/rootDesc.xml\r\n\r\n"
            % (st, st, ip, HTTP_PORT)).encode()


def serve_ssdp(sock, ip, mode):
    while True:
        data, peer = sock.recvfrom(4096)
        if data.startswith(b"M-SEARCH"):
            say("ssdp M-SEARCH from %s" % peer[0])
            sock.sendto(ssdp_reply(ip, mode, data), peer)


def serve_pmp(sock):
    while True:
        data, peer = sock.recvfrom(2048)
        say("pmp %d bytes" % len(data))
        for _ in range(3):
            sock.sendto(junk(random.choice([1, 4, 12, 16, 60, 61, 1100])), peer)


def main():
    ip, mode, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if mode not in ("ssdp", "desc", "soap", "ext"):
        sys.exit("igd_hostile.py: unknown mode %s" % mode)
    random.seed(os.getpid())
    ssdp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ssdp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ssdp.bind(("", SSDP_PORT))
    ssdp.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                    socket.inet_aton(SSDP_GROUP) + socket.inet_aton(ip))
    pmp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pmp.bind((ip, PMP_PORT))
    httpd = http.server.ThreadingHTTPServer((ip, HTTP_PORT), make_handler(ip, mode))
    for target, args in ((serve_ssdp, (ssdp, ip, mode)), (serve_pmp, (pmp,)), (httpd.serve_forever, ())):
        threading.Thread(target=target, args=args, daemon=True).start()
    say("ready")
    time.sleep(seconds)


if __name__ == "__main__":
    main()
