# An unmodified python3 program multiplexing a pipe and a socketpair with
# selectors: each turn it writes to both, reads back what arrived, and
# appends "<turn> <pipe bytes read> <socket bytes read>" to the output file.
import os, selectors, socket, sys, time
out = sys.argv[1]
sel = selectors.DefaultSelector()
r, w = os.pipe()
a, b = socket.socketpair()
os.set_blocking(r, False)
b.setblocking(False)
sel.register(r, selectors.EVENT_READ, 'pipe')
sel.register(b, selectors.EVENT_READ, 'sock')
got = {'pipe': 0, 'sock': 0}
turn = 0
while True:
    turn += 1
    os.write(w, b'p' * 10)
    a.send(b's' * 7)
    for key, _ in sel.select(timeout=0.05):
        data = os.read(r, 4096) if key.data == 'pipe' else b.recv(4096)
        got[key.data] += len(data)
    with open(out, 'a') as f:
        f.write(f"{turn} {got['pipe']} {got['sock']}\n")
    time.sleep(0.05)
