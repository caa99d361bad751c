"""The container image of tools/image.sh: at most 15 MB, exactly the binaries and the
shared objects they load, a non-root user, ringside as the entrypoint, version and
revision labels; and self-contained: from the mounted image's root (chroot, as the
image's user) ringside answers --version, ringside-ca reads a certificate, an ingress
carries a TLS round trip to an app outside the image, and `ringside probe` says 0 for a
ready sidecar and 1 for a draining one. Counted as skipped without buildah (root needed)."""

import os
import subprocess

import image_root
from image_root import harness
from harness import LOOPBACK, SERVICE

# The target: what a user deploys, files uncompressed (decimal megabytes).
MAX_IMAGE_BYTES = 15_000_000
IMAGE_FILES = {"usr/bin/ringside", "usr/bin/ringside-ca", "etc/passwd", "etc/group",
               "etc/nsswitch.conf"}


class ImageTest(image_root.ImageCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        print(f"\n{cls.image.size_line}", flush=True)

    def loaded_objects(self, program):
        """What the dynamic loader of the image loads for program, resolved inside the
        root: paths, and the names it could not find."""
        done = self.image.run(["/lib64/ld-linux-x86-64.so.2", "--list", program], user="0:0")
        self.assertEqual(done.returncode, 0, done.stderr)
        found, missing = set(), []
        for line in done.stdout.splitlines():
            words = line.split()
            if "=>" in words and "not" in words:
                missing.append(words[0])
            elif "=>" in words and words[words.index("=>") + 1].startswith("/"):
                found.add(words[words.index("=>") + 1].lstrip("/"))
            elif words and words[0].startswith("/"):
                found.add(words[0].lstrip("/"))
        return found, missing

    def test_size(self):
        if image_root.sanitized_build():
            self.skipTest(f"a sanitizer build's image ({self.image.content_bytes} bytes): "
                          f"the size limit is for the release image")
        self.assertLessEqual(self.image.content_bytes, MAX_IMAGE_BYTES, self.image.size_line)
        self.assertLess(self.image.archive_bytes, self.image.content_bytes)

    def test_exactly_the_binaries_and_the_objects_they_load(self):
        needed = set()
        for program in ("/usr/bin/ringside", "/usr/bin/ringside-ca"):
            found, missing = self.loaded_objects(program)
            self.assertEqual(missing, [], f"{program} needs objects the image lacks")
            needed |= found
        self.assertEqual(self.image.files, IMAGE_FILES | needed)

    def test_configuration(self):
        config = self.image.config
        self.assertEqual(config["Entrypoint"], ["/usr/bin/ringside"])
        self.assertEqual(config["User"], image_root.IMAGE_USER)
        with open(self.image.path("/etc/passwd")) as f:
            self.assertEqual(f.read().split(":")[2:4], ["65532", "65532"])
        labels = config["Labels"]
        version = subprocess.run([harness.binary("ringside"), "--version"], capture_output=True,
                                 text=True, check=True).stdout.split()[1]
        self.assertEqual(labels["org.opencontainers.image.version"], version)
        revision = labels["org.opencontainers.image.revision"]
        head = subprocess.run(["git", "-C", image_root.REPO, "rev-parse", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        if head:
            self.assertIn(revision, (head, head + "-dirty"))
        # --cert-dir's default, writable by the image's user alone.
        st = os.stat(self.image.path("/var/run/ringside"))
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (65532, 0o700))

    def test_binaries_run_from_the_image_root(self):
        done = self.image.run(["/usr/bin/ringside", "--version"])
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertRegex(done.stdout, r"^ringside \S+ \(wolfSSL ")
        self.image.put("/tmp/check/cert.pem", source=self.cert)
        done = self.image.run(["/usr/bin/ringside-ca", "show", "/tmp/check/cert.pem"])
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn(SERVICE, done.stdout)

    def start_ingress_from_image(self, app_port, extra=()):
        """An ingress ringside run from the image's root, on the host's network; its
        certificate in the root. Returns (process, ingress port)."""
        self.image.put("/etc/ringside/tls/cert.pem", source=self.cert)
        self.image.put("/etc/ringside/tls/key.pem", source=self.key, mode=0o600)
        port, admin_port = harness.free_port(), harness.free_port()
        argv = self.image.argv([
            "/usr/bin/ringside", "--service-name", SERVICE,
            "--ingress", f"{LOOPBACK}:{port}={LOOPBACK}:{app_port}",
            "--cert", "/etc/ringside/tls/cert.pem", "--key", "/etc/ringside/tls/key.pem",
            "--admin", f"{LOOPBACK}:{admin_port}", "--threads", "2", *extra])
        proc = harness.Ringside("image-ingress", argv, self.workdir, admin_port)
        self.processes.append(proc)
        if not harness.wait_until(lambda: proc.poll() is not None or proc.ready_status() == 200,
                                  timeout=15):
            self.fail_with_diag("the ingress from the image did not become ready")
        if proc.poll() is not None:
            self.fail_with_diag("the ingress from the image exited")
        return proc, port

    def probe_from_image(self, admin_port):
        done = self.image.run(["/usr/bin/ringside", "probe", "--admin",
                               f"{LOOPBACK}:{admin_port}", "--timeout", "2s"])
        return done.returncode, done.stdout.strip()

    def test_tls_round_trip_through_an_ingress_from_the_image(self):
        app = self.start_echo_app()  # outside the image
        ingress, port = self.start_ingress_from_image(app)
        payload = os.urandom(64 * 1024)
        self.assertEqual(harness.tls_echo(port, self.ca, payload=payload), payload)
        ingress.signal(15)
        self.assertEqual(ingress.wait(timeout=25), 0, self.diag())

    def test_probe_from_the_image_ready_then_draining(self):
        app = self.start_echo_app()
        ingress, port = self.start_ingress_from_image(app, extra=["--drain-timeout", "60s"])
        admin = f"{LOOPBACK}:{ingress.admin_port}"
        self.assertEqual(self.probe_from_image(ingress.admin_port),
                         (0, f"ready: {admin} answered 200 ready"))
        with harness.draining(ingress, port, self.ca):
            self.assertEqual(self.probe_from_image(ingress.admin_port),
                             (1, f"not ready: {admin} answered 503 draining"))
        self.assertEqual(ingress.wait(timeout=20), 0, self.diag())


if __name__ == "__main__":
    harness.main()
