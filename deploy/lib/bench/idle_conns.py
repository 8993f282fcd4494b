#!/usr/bin/env python3
"""Proxy RSS with many idle client connections.

Usage: idle_conns.py PORT N PID [USER PASSWORD DB TABLE]
Logs N clients in to a shardgate on 127.0.0.1:PORT (mysql_native_password), prints the VmRSS of process PID before,
after the logins, and after one point select on each; then closes them. Standard library only. The file-descriptor
limit (ulimit -n) must exceed N.
"""
import hashlib
import socket
import struct
import sys
def rp(s):
    h=b''
    while len(h)<4: h+=s.recv(4-len(h))
    n=h[0]|h[1]<<8|h[2]<<16; d=b''
    while len(d)<n: d+=s.recv(n-len(d))
    return h[3],d
def scramble(pw,nonce):
    s1=hashlib.sha1(pw).digest(); s2=hashlib.sha1(s1).digest(); m=hashlib.sha1(nonce+s2).digest()
    return bytes(a^b for a,b in zip(s1,m))
def login(port):
    s=socket.create_connection(('127.0.0.1',port)); seq,g=rp(s)
    i=g.index(b'\0',1)+1; nonce=g[i+4:i+12]; j=i+4+8+1+2+1+2+2+1+10; nonce+=g[j:j+12]
    tok=scramble(PASSWORD.encode(),nonce)
    caps=0x200|0x8000|0x80000|0x8|(1<<24)
    p=struct.pack('<IIB',caps,1<<24,45)+b'\0'*23+USER.encode()+b'\0'+bytes([len(tok)])+tok+DB.encode()+b'\0'+b'mysql_native_password\0'
    s.send(struct.pack('<I',len(p))[:3]+bytes([1])+p); r=rp(s)[1]
    assert r[:1]==b'\0', r
    return s
port=int(sys.argv[1]); n=int(sys.argv[2]); pid=sys.argv[3]
USER, PASSWORD, DB, TABLE = (sys.argv[4:8] + ['app', 'app', 'lg', 'loadgen_items'][len(sys.argv[4:8]):])
def rss(): return [l for l in open(f'/proc/{pid}/status') if l.startswith('VmRSS')][0].strip()
print('before', rss())
socks=[login(port) for _ in range(n)]
print(f'after {n} logins', rss())
# one point select on each, then idle
for s in socks:
    q=b'\x03SELECT * FROM '+TABLE.encode()+b' WHERE tenant_id = 7 LIMIT 1'
    s.send(struct.pack('<I',len(q))[:3]+b'\0'+q)
    while True:
        seq,d=rp(s)
        if d[:1] in (b'\xfe',b'\xff') and len(d)<0xffffff: break
        if d[:1]==b'\0' and seq==1: break
print(f'after a query on each', rss())
for s in socks: s.close()
