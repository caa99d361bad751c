"""The container image, built by tools/image.sh and run the only way this machine allows:
podman cannot run containers here (hybrid cgroups, fixed rlimits), so the image is
loaded back from its OCI archive into a private buildah storage, mounted, and its
binaries are run with chroot into the mounted root, as the image's user, with a /proc of
their own (what a container runtime gives them) and, when asked, a network namespace of
their own (so an example's fixed ports cannot meet another test's).

Used by test_image.py and test_examples.py; needs root and buildah (missing: the test
skips, or fails under CI=true: tools/packages.txt installs buildah)."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE_SCRIPT = os.path.join(REPO, "tools", "image.sh")
IMAGE_USER = "65532:65532"
# tools/image.sh's last line: "image: NAME (revision R): N bytes of files (...), archive PATH M bytes (...)"
SIZE_LINE = re.compile(r"^image: (\S+) \(revision (\S+)\): (\d+) bytes of files .*, "
                       r"archive (\S+) (\d+) bytes", re.M)


def sanitized_build():
    """True when the binaries under test carry ASan/UBSan (meson sets RINGSIDE_SANITIZE
    from b_sanitize): their image holds the sanitizer runtimes too, and the size limit,
    which is about the image users deploy, does not apply to it."""
    return os.environ.get("RINGSIDE_SANITIZE", "none") not in ("", "none")


class ImageRoot:
    """Builds the image from the build under test, loads it from its archive and mounts
    it. close() removes the container, the storage and the archive."""

    def __init__(self, workdir):
        self.buildah_path = harness.require_tool("buildah")
        harness.require_tool("unshare")
        if os.geteuid() != 0:
            raise harness.unittest.SkipTest("needs root (buildah mount, chroot)")
        self.workdir = workdir
        self.storage = os.path.join(workdir, "storage")
        self.archive = os.path.join(workdir, "ringside-image.tar")
        self.container = None
        env = dict(os.environ, RINGSIDE_IMAGE_STORAGE=self.storage)
        build = subprocess.run(["bash", IMAGE_SCRIPT, harness.build_root(), self.archive],
                               capture_output=True, text=True, env=env, timeout=300)
        if build.returncode != 0:
            raise AssertionError(f"tools/image.sh failed ({build.returncode}):\n"
                                 f"{build.stdout}{build.stderr}")
        self.build_output = build.stdout + build.stderr
        match = SIZE_LINE.search(build.stdout)
        if not match:
            raise AssertionError(f"tools/image.sh printed no size line:\n{self.build_output}")
        self.name, self.revision = match.group(1), match.group(2)
        self.content_bytes, self.archive_bytes = int(match.group(3)), int(match.group(5))
        self.size_line = match.group(0)
        # What a user does with the archive: load it (here into a working container).
        self.container = self.buildah("from", "--quiet", f"oci-archive:{self.archive}").strip()
        self.root = self.buildah("mount", self.container).strip()
        self.config = json.loads(self.buildah("inspect", self.container))["OCIv1"]["config"]
        # The image's files, before a test adds any to the working container.
        self.files = set()
        for folder, _, names in os.walk(self.root):
            for name in names:
                self.files.add(os.path.relpath(os.path.join(folder, name), self.root))
        # A runtime makes the mount point; the image does not carry it.
        os.makedirs(os.path.join(self.root, "proc"), exist_ok=True)

    def buildah(self, *args):
        done = subprocess.run([self.buildah_path, "--root", os.path.join(self.storage, "root"),
                               "--runroot", os.path.join(self.storage, "run"),
                               "--storage-driver", "vfs", *args],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise AssertionError(f"buildah {' '.join(args)}: {done.stderr}")
        return done.stdout

    def close(self):
        if self.container:
            subprocess.run([self.buildah_path, "--root", os.path.join(self.storage, "root"),
                            "--runroot", os.path.join(self.storage, "run"),
                            "--storage-driver", "vfs", "rm", self.container],
                           capture_output=True, timeout=120)
        shutil.rmtree(self.storage, ignore_errors=True)
        if os.path.exists(self.archive):
            os.unlink(self.archive)

    def path(self, inside):
        """Host path of a path inside the image's root."""
        return os.path.join(self.root, inside.lstrip("/"))

    def put(self, inside, source=None, text=None, mode=0o644, owner=65532):
        """Copies a host file (or writes text) into the root, owned by the image's user."""
        target = self.path(inside)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if source is not None:
            shutil.copyfile(source, target)
        else:
            with open(target, "w") as f:
                f.write(text)
        os.chmod(target, mode)
        os.chown(target, owner, owner)
        return target

    def argv(self, command, user=IMAGE_USER, network_namespace=False, network_of=None):
        """argv that runs command (its first word a path inside the image) chrooted into
        the root as user, with a fresh /proc, in a mount namespace of its own; in a network
        namespace of its own (loopback up) when network_namespace, or in the one of the
        process network_of (how a health check runs inside its task's or pod's network).
        Every step execs the next: the pid is the program's, so signals reach it."""
        setup = 'mount -t proc proc "$0/proc" && '
        flags = ["--mount", "--propagation", "private"]
        if network_namespace:
            setup = "ip link set lo up && " + setup
            flags.append("--net")
        argv = ["unshare", *flags, "--", "sh", "-c",
                setup + f'exec chroot --userspec={user} "$0" "$@"', self.root, *command]
        if network_of is not None:
            argv = ["nsenter", f"--net=/proc/{network_of}/ns/net", "--", *argv]
        return argv

    def run(self, command, timeout=30, **kwargs):
        return subprocess.run(self.argv(command, **kwargs), capture_output=True, text=True,
                              timeout=timeout)


class ImageCase(harness.PkiCase):
    """A test class sharing one image (self.image, built once for the class) and the
    certificates of harness.PkiCase."""
    image = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.image_dir = tempfile.mkdtemp(prefix="ringside-image-")
        try:
            cls.image = ImageRoot(cls.image_dir)
        except BaseException:
            shutil.rmtree(cls.image_dir, ignore_errors=True)
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.image:
            cls.image.close()
        shutil.rmtree(cls.image_dir, ignore_errors=True)
        super().tearDownClass()
