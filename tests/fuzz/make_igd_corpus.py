#!/usr/bin/env python3
"""Write the seed corpus for fuzz_igd: a UPnP IGD's device description
(first byte 0), SOAP answers (1) and bare external addresses (2), good
ones and broken ones, as UPnP IGD 1.0 (WANIPConnection:1) lays them out.
The output is committed; run this again only when the format changes."""
import os
import sys

WANIP = "urn:schemas-upnp-org:service:WANIPConnection:1"


def service(stype, ctl):
    return ("<service><serviceType>%s</serviceType><serviceId>urn:upnp-org:serviceId:x</serviceId>"
            "<controlURL>%s</controlURL><eventSubURL>/evt</eventSubURL><SCPDURL>/scpd.xml</SCPDURL></service>"
            % (stype, ctl))


def desc(services, urlbase="http://10.0.1.1:5000/"):
    return ('<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0">'
            "<specVersion><major>1</major><minor>0</minor></specVersion><URLBase>%s</URLBase>"
            "<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>"
            "<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>"
            "<serviceList>%s</serviceList></device></deviceList></device></root>"
            % (urlbase, services))


def soap(body):
    return ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>%s</s:Body></s:Envelope>' % body)


def ext(ip):
    return soap('<u:GetExternalIPAddressResponse xmlns:u="%s"><NewExternalIPAddress>%s</NewExternalIPAddress>'
                "</u:GetExternalIPAddressResponse>" % (WANIP, ip))


SEEDS = {
    "desc_ok": (0, desc(service(WANIP, "/ctl/IPConn")
                        + service("urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1", "/ctl/CmnIfCfg"))),
    "desc_ppp_and_ip": (0, desc(service("urn:schemas-upnp-org:service:WANPPPConnection:1", "/ppp")
                                + service(WANIP, "/ip"))),
    "desc_long_url": (0, desc(service(WANIP, "/" + "a" * 400), urlbase="http://" + "b" * 300 + "/")),
    "desc_truncated": (0, desc(service(WANIP, "/ctl/IPConn"))[:180]),
    "desc_nested": (0, "<a>" * 500 + "</a>" * 10),
    "desc_unclosed_attr": (0, '<root a="' + "x" * 100),
    "soap_ext_ok": (1, ext("11.0.113.10")),
    "soap_ext_zero": (1, ext("0.0.0.0")),
    "soap_ext_long": (1, ext("1" * 300)),
    "soap_ext_empty": (1, ext("")),
    "soap_error": (1, soap("<s:Fault><detail><UPnPError><errorCode>501</errorCode>"
                           "<errorDescription>Action Failed</errorDescription></UPnPError></detail></s:Fault>")),
    "soap_garbage": (1, "\x00\xff<<>>&amp;<![CDATA[x"),
    "ip_ok": (2, "203.0.113.7"),
    "ip_loopback": (2, "127.0.0.1"),
    "ip_v6": (2, "2001:db8::1"),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "igd")
    os.makedirs(out, exist_ok=True)
    for name, (kind, text) in sorted(SEEDS.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([kind]) + text.encode("latin-1"))


if __name__ == "__main__":
    main()
