"""A RHEL-style install tree (Xen kernel, initrd, kickstart) served over HTTP on 127.0.0.1."""

import contextlib
import functools
import http.server
import threading


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@contextlib.contextmanager
def served_tree(tmp_path):
    """Make the tree under ``tmp_path/pub`` and serve it; yields its URL."""
    root = tmp_path / "pub"
    (root / "images" / "xen").mkdir(parents=True)
    (root / "images" / "xen" / "vmlinuz").write_bytes(b"\x7fELF fake xen kernel")
    (root / "images" / "xen" / "initrd.img").write_bytes(b"fake initrd")
    (root / "ks.cfg").write_text("install\nurl --url ftp://192.168.0.254/pub\n")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"  # serves pub/ as its root
    finally:
        server.shutdown()
        server.server_close()
