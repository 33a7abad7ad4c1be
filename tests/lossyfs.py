"""A passthrough FUSE filesystem that loses what was never synced, like a disk whose write cache
a power cut empties: every write stays in this process's memory until its file is fsynced (or
fdatasynced); creating the file CONTROL_DIR/power_failure discards everything not synced yet
("the power failed": renamed to power_failure.done once done), and from then on the mount
serves what was synced. Metadata (create, rename, unlink, truncate) is durable at once.
Mounted with direct_io and no attribute cache, so the kernel keeps no copy of the lost data.
    lossyfs.py BACKING_DIR MOUNTPOINT CONTROL_DIR   (runs in the foreground; unmount to stop)
Used by tests/power_failure.sh to show that every commit a client saw survives, which needs fsync."""

import errno
import os
import time
import sys
import threading

from fuse import FUSE, FuseOSError, Operations, fuse_get_context

PAGE = 4096


class Dirty:
    """The unsynced pages of one file, and its size as written."""

    def __init__(self, size):
        self.size = size
        self.pages = {}


class LossyFS(Operations):
    def __init__(self, backing):
        self.backing = backing
        self.mutex = threading.Lock()
        self.dirty = {}  # path -> Dirty
        self.lost = 0

    def _real(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    def _owned(self, real):
        uid, gid, _ = fuse_get_context()
        os.lchown(real, uid, gid)

    def power_failure(self):
        with self.mutex:
            self.lost += sum(len(d.pages) for d in self.dirty.values())
            self.dirty.clear()
        print(f"lossyfs: power failure, {self.lost} unsynced pages lost so far", flush=True)

    # -- metadata: straight to the backing directory
    def getattr(self, path, fh=None):
        st = os.lstat(self._real(path))
        attrs = {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size",
                                              "st_atime", "st_mtime", "st_ctime")}
        with self.mutex:
            d = self.dirty.get(path)
            if d is not None:
                attrs["st_size"] = d.size
        return attrs

    def access(self, path, amode):
        if not os.access(self._real(path), amode):
            raise FuseOSError(errno.EACCES)

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._real(path))

    def readlink(self, path):
        return os.readlink(self._real(path))

    def mkdir(self, path, mode):
        os.mkdir(self._real(path), mode)
        self._owned(self._real(path))

    def rmdir(self, path):
        os.rmdir(self._real(path))

    def unlink(self, path):
        with self.mutex:
            self.dirty.pop(path, None)
            os.unlink(self._real(path))

    def rename(self, old, new):
        with self.mutex:
            os.rename(self._real(old), self._real(new))
            self.dirty.pop(new, None)
            if old in self.dirty:
                self.dirty[new] = self.dirty.pop(old)

    def symlink(self, target, source):
        os.symlink(source, self._real(target))
        self._owned(self._real(target))

    def link(self, target, source):
        os.link(self._real(source), self._real(target))

    def chmod(self, path, mode):
        os.chmod(self._real(path), mode)

    def chown(self, path, uid, gid):
        os.lchown(self._real(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._real(path), times)

    def statfs(self, path):
        st = os.statvfs(self._real(path))
        return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                             "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def truncate(self, path, length, fh=None):
        with self.mutex:
            d = self.dirty.get(path)
            if d is not None:
                d.size = length
                d.pages = {n: p for n, p in d.pages.items() if n * PAGE < length}
                last = length // PAGE
                if last in d.pages:
                    d.pages[last][length % PAGE:] = bytes(PAGE - length % PAGE)
            with open(self._real(path), "r+b") as f:
                f.truncate(length)

    # -- data: writes kept in memory until fsync
    def create(self, path, mode, fi=None):
        with self.mutex:
            self.dirty.pop(path, None)
        fd = os.open(self._real(path), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
        self._owned(self._real(path))
        return fd

    def open(self, path, flags):
        # writes read the rest of their page first: a writer's descriptor must read too
        access = os.O_RDONLY if flags & os.O_ACCMODE == os.O_RDONLY else os.O_RDWR
        fd = os.open(self._real(path), access)
        if flags & os.O_TRUNC:
            self.truncate(path, 0)
        return fd

    def _page(self, d, fh, n):
        page = d.pages.get(n)
        if page is None:
            page = bytearray(os.pread(fh, PAGE, n * PAGE).ljust(PAGE, b"\0"))
            d.pages[n] = page
        return page

    def read(self, path, size, offset, fh):
        with self.mutex:
            d = self.dirty.get(path)
            if d is None:
                return os.pread(fh, size, offset)
            size = max(0, min(size, d.size - offset))
            out = bytearray()
            pos = offset
            while pos < offset + size:
                n, start = divmod(pos, PAGE)
                take = min(PAGE - start, offset + size - pos)
                page = d.pages.get(n)
                if page is None:
                    chunk = os.pread(fh, take, pos).ljust(take, b"\0")
                else:
                    chunk = page[start:start + take]
                out += chunk
                pos += take
            return bytes(out)

    def write(self, path, data, offset, fh):
        with self.mutex:
            d = self.dirty.get(path)
            if d is None:
                d = self.dirty[path] = Dirty(os.fstat(fh).st_size)
            pos = offset
            view = memoryview(data)
            while view:
                n, start = divmod(pos, PAGE)
                take = min(PAGE - start, len(view))
                self._page(d, fh, n)[start:start + take] = view[:take]
                view = view[take:]
                pos += take
            d.size = max(d.size, offset + len(data))
            return len(data)

    def fsync(self, path, datasync, fh):
        with self.mutex:
            d = self.dirty.pop(path, None)
            if d is not None:
                for n, page in sorted(d.pages.items()):
                    os.pwrite(fh, bytes(page[:max(0, min(PAGE, d.size - n * PAGE))]), n * PAGE)
                os.ftruncate(fh, d.size)
            os.fsync(fh)
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)
        return 0


def watch(fs, control):
    trigger = os.path.join(control, "power_failure")
    while True:
        if os.path.exists(trigger):
            fs.power_failure()
            os.rename(trigger, trigger + ".done")
        time.sleep(0.05)


if __name__ == "__main__":
    fs = LossyFS(os.path.realpath(sys.argv[1]))
    threading.Thread(target=watch, args=(fs, sys.argv[3]), daemon=True).start()
    FUSE(fs, sys.argv[2], foreground=True, nothreads=False, allow_other=True, direct_io=True,
         default_permissions=True, attr_timeout=0, entry_timeout=0, negative_timeout=0)
