// Wraps virDomain* (libvirt-domain.h)
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace QubesWeb.Hypervisor.Libvirt;

/// An owned virDomainPtr. The pointer holds its own reference on the connection inside libvirt, so a Domain
/// stays usable (for as long as libvirt lets it) even after the Connect that produced it is disposed.
public sealed unsafe class Domain : IDisposable
{
    private readonly DomainHandle _handle;

    internal Domain(DomainHandle handle) => _handle = handle;

    internal DomainHandle Handle => _handle;

    /// The name this pointer was looked up with; a rename needs a fresh lookup.
    public string Name =>
        Marshal.PtrToStringUTF8(LibvirtException.Check(Native.virDomainGetName(_handle)))!;

    public Guid Uuid
    {
        get
        {
            var buffer = stackalloc byte[Native.UuidStringBufferLength];
            LibvirtException.Check(Native.virDomainGetUUIDString(_handle, buffer));
            return Guid.Parse(Marshal.PtrToStringUTF8((nint)buffer)!);
        }
    }

    /// Reason is one of the virDomain*Reason enums matching State (e.g. virDomainShutoffReason).
    public (DomainState State, int Reason) GetState()
    {
        int state, reason;
        LibvirtException.Check(Native.virDomainGetState(_handle, &state, &reason, 0));
        return ((DomainState)state, reason);
    }

    public DomainInfo GetInfo()
    {
        Native.VirDomainInfo info;
        LibvirtException.Check(Native.virDomainGetInfo(_handle, &info));
        return new DomainInfo((DomainState)info.State, info.MaxMem.Value, info.Memory.Value, info.NrVirtCpu,
            info.CpuTime);
    }

    public bool IsActive => LibvirtException.Check(Native.virDomainIsActive(_handle)) == 1;

    public bool IsPersistent => LibvirtException.Check(Native.virDomainIsPersistent(_handle)) == 1;

    public void Create() => LibvirtException.Check(Native.virDomainCreate(_handle));

    /// Asks the guest to shut down; on a real hypervisor this returns before the domain is off.
    public void Shutdown() => LibvirtException.Check(Native.virDomainShutdown(_handle));

    public void Destroy() => LibvirtException.Check(Native.virDomainDestroy(_handle));

    public void Suspend() => LibvirtException.Check(Native.virDomainSuspend(_handle));

    public void Resume() => LibvirtException.Check(Native.virDomainResume(_handle));

    public void Reboot() => LibvirtException.Check(Native.virDomainReboot(_handle, 0));

    public void Undefine(DomainUndefineFlags flags = 0) =>
        LibvirtException.Check(Native.virDomainUndefineFlags(_handle, (uint)flags));

    /// Adds a device (e.g. a network interface) given as its XML element: to the running domain (Live), its
    /// persistent definition (Config), or both.
    public void AttachDevice(string deviceXml, DomainDeviceModifyFlags flags) =>
        LibvirtException.Check(Native.virDomainAttachDeviceFlags(_handle, deviceXml, (uint)flags));

    /// Removes the device <paramref name="deviceXml"/> identifies (for an interface, its MAC address).
    public void DetachDevice(string deviceXml, DomainDeviceModifyFlags flags) =>
        LibvirtException.Check(Native.virDomainDetachDeviceFlags(_handle, deviceXml, (uint)flags));

    /// Changes a device in place (for an interface, the one with its MAC address): e.g. the network it is on, which
    /// qemu switches live without unplugging the NIC from the guest.
    public void UpdateDevice(string deviceXml, DomainDeviceModifyFlags flags) =>
        LibvirtException.Check(Native.virDomainUpdateDeviceFlags(_handle, deviceXml, (uint)flags));

    public string GetXmlDesc(DomainXmlFlags flags = 0) =>
        Native.TakeString(LibvirtException.Check(Native.virDomainGetXMLDesc(_handle, (uint)flags)));

    /// For Element, uri selects the namespace and the element comes back without prefix or xmlns declaration.
    /// Null when the domain has no such metadata.
    public string? GetMetadata(DomainMetadataType type, string? uri, DomainModificationImpact flags = 0)
    {
        var text = Native.virDomainGetMetadata(_handle, (int)type, uri, (uint)flags);
        if (text != 0)
        {
            return Native.TakeString(text);
        }
        var error = LibvirtException.FromLastError();
        return error.Code == ErrorNumber.NoDomainMetadata ? null : throw error;
    }

    /// For Element, key is the namespace prefix written into the XML and uri its namespace; a null metadata
    /// removes the entry.
    public void SetMetadata(DomainMetadataType type, string? metadata, string? key, string? uri,
        DomainModificationImpact flags = 0) =>
        LibvirtException.Check(Native.virDomainSetMetadata(_handle, (int)type, metadata, key, uri, (uint)flags));

    public bool Autostart
    {
        get
        {
            int autostart;
            LibvirtException.Check(Native.virDomainGetAutostart(_handle, &autostart));
            return autostart != 0;
        }
        set => LibvirtException.Check(Native.virDomainSetAutostart(_handle, value ? 1 : 0));
    }

    /// Starts a screenshot of <paramref name="screen"/> into <paramref name="stream"/> (read it to its end, then
    /// Finish); returns the image's MIME type as the driver chose it (qemu: PNG or PPM; the test driver: PNG).
    public string Screenshot(LibvirtStream stream, uint screen = 0) =>
        Native.TakeString(LibvirtException.Check(Native.virDomainScreenshot(_handle, stream.Handle, screen, 0)));

    /// Connects <paramref name="stream"/> to the domain's console <paramref name="device"/> (null: the first one).
    /// Safe refuses when the driver cannot guarantee one user at a time; Force takes the console from another user.
    public void OpenConsole(string? device, LibvirtStream stream, DomainConsoleFlags flags = 0) =>
        LibvirtException.Check(Native.virDomainOpenConsole(_handle, device, stream.Handle, (uint)flags));

    /// virDomainOpenGraphicsFD: a connected socket to the domain's graphical display <paramref name="index"/> (its
    /// VNC server for qemu), made by libvirt as a socket pair whose other end it hands to qemu: no socket path and no
    /// TCP port to know. The caller owns the returned descriptor. SkipAuth skips the display's own password, which
    /// only libvirt's client (already authenticated to libvirt) can ask for.
    public int OpenGraphicsFd(uint index = 0, DomainOpenGraphicsFlags flags = 0) =>
        LibvirtException.Check(Native.virDomainOpenGraphicsFD(_handle, index, (uint)flags));

    /// virDomainBlockPull: copies into the active layer of <paramref name="disk"/> (its target, e.g. "xvda", or its
    /// path) the data it reads from its backing chain, in the background while the guest runs, and then drops the
    /// backing file. <paramref name="bandwidthMiBs"/> limits it (0: no limit). Follow it with
    /// <see cref="GetBlockJobInfo"/>; a domain that is not running has no block jobs (OperationInvalid).
    public void BlockPull(string disk, ulong bandwidthMiBs = 0) =>
        LibvirtException.Check(Native.virDomainBlockPull(_handle, disk, new CULong((nuint)bandwidthMiBs), 0));

    /// virDomainGetBlockJobInfo: the block job running on <paramref name="disk"/>, or null when there is none (the
    /// job ended, or never ran). A pull is done when its cursor reaches its end and the call then returns null.
    public BlockJobInfo? GetBlockJobInfo(string disk)
    {
        Native.VirDomainBlockJobInfo info;
        var found = LibvirtException.Check(Native.virDomainGetBlockJobInfo(_handle, disk, &info, 0));
        return found == 0 ? null : new BlockJobInfo((BlockJobType)info.Type, info.Bandwidth.Value, info.Cur, info.End);
    }

    /// virDomainBlockJobAbort: stops the block job on <paramref name="disk"/>. A pull stopped half-way leaves the
    /// layer consistent: what it copied is data it already read through its backing file.
    public void BlockJobAbort(string disk, BlockJobAbortFlags flags = 0) =>
        LibvirtException.Check(Native.virDomainBlockJobAbort(_handle, disk, (uint)flags));

    public void Dispose() => _handle.Dispose();
}

/// virDomainBlockJobType
public enum BlockJobType
{
    Unknown = 0,
    Pull = 1,
    Copy = 2,
    Commit = 3,
    ActiveCommit = 4,
    Backup = 5,
}

/// virDomainBlockJobAbortFlags
[Flags]
public enum BlockJobAbortFlags : uint
{
    /// VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC: return at once; the job's end comes as an event.
    Async = 1 << 0,
    /// VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT: for a copy, switch the disk to the copy.
    Pivot = 1 << 1,
}

/// virDomainBlockJobInfo: <see cref="Bandwidth"/> in MiB/s; <see cref="Cursor"/> of <see cref="End"/> done (bytes for a pull).
public readonly record struct BlockJobInfo(BlockJobType Type, ulong Bandwidth, ulong Cursor, ulong End)
{
    public double Percent => End == 0 ? 0 : 100.0 * Cursor / End;
}

/// virDomainConsoleFlags
[Flags]
public enum DomainConsoleFlags : uint
{
    /// VIR_DOMAIN_CONSOLE_FORCE: abort a console connection another client holds.
    Force = 1 << 0,
    /// VIR_DOMAIN_CONSOLE_SAFE: refuse unless the driver can tell that no one else has the console open.
    Safe = 1 << 1,
}

/// virDomainOpenGraphicsFlags
[Flags]
public enum DomainOpenGraphicsFlags : uint
{
    /// VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH: connect without the display's own authentication.
    SkipAuth = 1 << 0,
}

public readonly record struct DomainInfo(
    DomainState State, ulong MaxMemoryKiB, ulong MemoryKiB, ushort VirtCpus, ulong CpuTimeNs);

internal sealed class DomainHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public DomainHandle() : base(ownsHandle: true)
    {
    }

    internal DomainHandle(nint pointer) : base(ownsHandle: true) => SetHandle(pointer);

    protected override bool ReleaseHandle() => Native.virDomainFree(handle) == 0;
}

/// virDomainState
public enum DomainState
{
    /// VIR_DOMAIN_NOSTATE
    NoState = 0,
    /// VIR_DOMAIN_RUNNING
    Running = 1,
    /// VIR_DOMAIN_BLOCKED
    Blocked = 2,
    /// VIR_DOMAIN_PAUSED
    Paused = 3,
    /// VIR_DOMAIN_SHUTDOWN: being shut down, not yet off.
    Shutdown = 4,
    /// VIR_DOMAIN_SHUTOFF
    Shutoff = 5,
    /// VIR_DOMAIN_CRASHED
    Crashed = 6,
    /// VIR_DOMAIN_PMSUSPENDED
    PMSuspended = 7,
}

/// virDomainDeviceModifyFlags
[Flags]
public enum DomainDeviceModifyFlags : uint
{
    /// VIR_DOMAIN_DEVICE_MODIFY_CURRENT: the running domain if it runs, else its definition.
    Current = 0,
    /// VIR_DOMAIN_DEVICE_MODIFY_LIVE
    Live = 1 << 0,
    /// VIR_DOMAIN_DEVICE_MODIFY_CONFIG
    Config = 1 << 1,
    /// VIR_DOMAIN_DEVICE_MODIFY_FORCE
    Force = 1 << 2,
}

/// virDomainUndefineFlagsValues
[Flags]
public enum DomainUndefineFlags : uint
{
    /// VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    ManagedSave = 1 << 0,
    /// VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    SnapshotsMetadata = 1 << 1,
    /// VIR_DOMAIN_UNDEFINE_NVRAM
    Nvram = 1 << 2,
    /// VIR_DOMAIN_UNDEFINE_KEEP_NVRAM
    KeepNvram = 1 << 3,
    /// VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    CheckpointsMetadata = 1 << 4,
    /// VIR_DOMAIN_UNDEFINE_TPM
    Tpm = 1 << 5,
    /// VIR_DOMAIN_UNDEFINE_KEEP_TPM
    KeepTpm = 1 << 6,
}

/// virDomainXMLFlags
[Flags]
public enum DomainXmlFlags : uint
{
    /// VIR_DOMAIN_XML_SECURE
    Secure = 1 << 0,
    /// VIR_DOMAIN_XML_INACTIVE
    Inactive = 1 << 1,
    /// VIR_DOMAIN_XML_UPDATE_CPU
    UpdateCpu = 1 << 2,
    /// VIR_DOMAIN_XML_MIGRATABLE
    Migratable = 1 << 3,
}

/// virDomainMetadataType
public enum DomainMetadataType
{
    /// VIR_DOMAIN_METADATA_DESCRIPTION
    Description = 0,
    /// VIR_DOMAIN_METADATA_TITLE
    Title = 1,
    /// VIR_DOMAIN_METADATA_ELEMENT
    Element = 2,
}

/// virDomainModificationImpact
[Flags]
public enum DomainModificationImpact : uint
{
    /// VIR_DOMAIN_AFFECT_CURRENT
    Current = 0,
    /// VIR_DOMAIN_AFFECT_LIVE
    Live = 1 << 0,
    /// VIR_DOMAIN_AFFECT_CONFIG
    Config = 1 << 1,
}

internal static unsafe partial class Native
{
    /// VIR_UUID_STRING_BUFLEN: 36 characters and the terminating NUL.
    internal const int UuidStringBufferLength = 37;

    /// struct _virDomainInfo; unsigned long is 64-bit on Linux x64 but not everywhere, hence CULong.
    [StructLayout(LayoutKind.Sequential)]
    internal struct VirDomainInfo
    {
        public byte State;
        public CULong MaxMem;
        public CULong Memory;
        public ushort NrVirtCpu;
        public ulong CpuTime;
    }

    /// Copies a string libvirt handed over and frees it with libc free, as libvirt's API contract requires.
    internal static string TakeString(nint text)
    {
        try
        {
            return Marshal.PtrToStringUTF8(text)!;
        }
        finally
        {
            NativeMemory.Free((void*)text);
        }
    }

    [LibraryImport(Library)]
    internal static partial int virDomainFree(nint domain);

    [LibraryImport(Library)]
    internal static partial nint virDomainGetName(DomainHandle domain);

    [LibraryImport(Library)]
    internal static partial nint virDomainGetName(nint domain);

    [LibraryImport(Library)]
    internal static partial int virDomainGetUUIDString(DomainHandle domain, byte* buf);

    [LibraryImport(Library)]
    internal static partial int virDomainGetUUIDString(nint domain, byte* buf);

    [LibraryImport(Library)]
    internal static partial int virDomainGetState(DomainHandle domain, int* state, int* reason, uint flags);

    [LibraryImport(Library)]
    internal static partial int virDomainGetInfo(DomainHandle domain, VirDomainInfo* info);

    [LibraryImport(Library)]
    internal static partial int virDomainIsActive(DomainHandle domain);

    [LibraryImport(Library)]
    internal static partial int virDomainIsPersistent(DomainHandle domain);

    [LibraryImport(Library)]
    internal static partial int virDomainCreate(DomainHandle domain);

    [LibraryImport(Library)]
    internal static partial int virDomainShutdown(DomainHandle domain);

    [LibraryImport(Library)]
    internal static partial int virDomainDestroy(DomainHandle domain);

    [LibraryImport(Library)]
    internal static partial int virDomainSuspend(DomainHandle domain);

    [LibraryImport(Library)]
    internal static partial int virDomainResume(DomainHandle domain);

    [LibraryImport(Library)]
    internal static partial int virDomainReboot(DomainHandle domain, uint flags);

    [LibraryImport(Library)]
    internal static partial int virDomainUndefineFlags(DomainHandle domain, uint flags);

    [LibraryImport(Library)]
    internal static partial nint virDomainGetXMLDesc(DomainHandle domain, uint flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint virDomainGetMetadata(DomainHandle domain, int type, string? uri, uint flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainSetMetadata(DomainHandle domain, int type, string? metadata, string? key,
        string? uri, uint flags);

    /// struct _virDomainBlockJobInfo
    [StructLayout(LayoutKind.Sequential)]
    internal struct VirDomainBlockJobInfo
    {
        public int Type;
        public CULong Bandwidth;
        public ulong Cur;
        public ulong End;
    }

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainBlockPull(DomainHandle domain, string disk, CULong bandwidth, uint flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainGetBlockJobInfo(DomainHandle domain, string disk, VirDomainBlockJobInfo* info, uint flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainBlockJobAbort(DomainHandle domain, string disk, uint flags);

    [LibraryImport(Library)]
    internal static partial nint virDomainScreenshot(DomainHandle domain, StreamHandle stream, uint screen, uint flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainOpenConsole(DomainHandle domain, string? devName, StreamHandle stream, uint flags);

    [LibraryImport(Library)]
    internal static partial int virDomainOpenGraphicsFD(DomainHandle domain, uint idx, uint flags);

    [LibraryImport(Library)]
    internal static partial int virDomainGetAutostart(DomainHandle domain, int* autostart);

    [LibraryImport(Library)]
    internal static partial int virDomainSetAutostart(DomainHandle domain, int autostart);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial DomainHandle virDomainLookupByName(ConnectHandle conn, string name);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial DomainHandle virDomainLookupByUUIDString(ConnectHandle conn, string uuid);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial DomainHandle virDomainDefineXML(ConnectHandle conn, string xml);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainAttachDeviceFlags(DomainHandle domain, string xml, uint flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainDetachDeviceFlags(DomainHandle domain, string xml, uint flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int virDomainUpdateDeviceFlags(DomainHandle domain, string xml, uint flags);
}
