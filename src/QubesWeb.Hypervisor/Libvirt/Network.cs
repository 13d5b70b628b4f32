// Wraps virNetwork* and the virConnect*Network* calls (libvirt-network.h)
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace QubesWeb.Hypervisor.Libvirt;

/// An owned virNetworkPtr: a virtual network (a bridge libvirt manages, with or without an address and DHCP on the
/// host). Like a Domain, it holds its own reference on the connection inside libvirt.
public sealed unsafe class Network : IDisposable
{
    private readonly NetworkHandle _handle;

    internal Network(NetworkHandle handle) => _handle = handle;

    public string Name =>
        Marshal.PtrToStringUTF8(LibvirtException.Check(Native.virNetworkGetName(_handle)))!;

    public Guid Uuid
    {
        get
        {
            var buffer = stackalloc byte[Native.UuidStringBufferLength];
            LibvirtException.Check(Native.virNetworkGetUUIDString(_handle, buffer));
            return Guid.Parse(Marshal.PtrToStringUTF8((nint)buffer)!);
        }
    }

    public bool IsActive => LibvirtException.Check(Native.virNetworkIsActive(_handle)) == 1;

    public bool IsPersistent => LibvirtException.Check(Native.virNetworkIsPersistent(_handle)) == 1;

    /// Starts a defined network (its bridge comes up).
    public void Create() => LibvirtException.Check(Native.virNetworkCreate(_handle));

    /// Stops it: its bridge goes, and with it every guest interface on it loses its link.
    public void Destroy() => LibvirtException.Check(Native.virNetworkDestroy(_handle));

    public void Undefine() => LibvirtException.Check(Native.virNetworkUndefine(_handle));

    public string GetXmlDesc(NetworkXmlFlags flags = 0) =>
        Native.TakeString(LibvirtException.Check(Native.virNetworkGetXMLDesc(_handle, (uint)flags)));

    /// Whether libvirt starts it when its daemon starts.
    public bool Autostart
    {
        get
        {
            int autostart;
            LibvirtException.Check(Native.virNetworkGetAutostart(_handle, &autostart));
            return autostart != 0;
        }
        set => LibvirtException.Check(Native.virNetworkSetAutostart(_handle, value ? 1 : 0));
    }

    public void Dispose() => _handle.Dispose();
}

public sealed unsafe partial class Connect
{
    public IReadOnlyList<Network> ListAllNetworks(ConnectListAllNetworksFlags flags = 0)
    {
        nint* array;
        var count = LibvirtException.Check(Native.virConnectListAllNetworks(Handle, &array, (uint)flags));
        try
        {
            var networks = new Network[count];
            for (var i = 0; i < count; i++)
            {
                networks[i] = new Network(new NetworkHandle(array[i]));
            }
            return networks;
        }
        finally
        {
            NativeMemory.Free(array);
        }
    }

    /// Null only for "no such network"; any other failure still throws. A name holding NUL names no network.
    public Network? TryLookupNetworkByName(string name)
    {
        if (name.Contains('\0')) return null;
        var handle = Native.virNetworkLookupByName(Handle, name);
        if (!handle.IsInvalid)
        {
            return new Network(handle);
        }
        var error = LibvirtException.FromLastError();
        return error.Code == ErrorNumber.NoNetwork ? null : throw error;
    }

    /// Defines a new persistent network or, with a known name and UUID, replaces its configuration (applied at its next start).
    public Network DefineNetworkXml(string xml) =>
        new(LibvirtException.Check(Native.virNetworkDefineXML(Handle, xml)));
}

internal sealed class NetworkHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public NetworkHandle() : base(ownsHandle: true)
    {
    }

    internal NetworkHandle(nint pointer) : base(ownsHandle: true) => SetHandle(pointer);

    protected override bool ReleaseHandle() => Native.virNetworkFree(handle) == 0;
}

/// virConnectListAllNetworksFlags
[Flags]
public enum ConnectListAllNetworksFlags : uint
{
    /// VIR_CONNECT_LIST_NETWORKS_INACTIVE
    Inactive = 1 << 0,
    /// VIR_CONNECT_LIST_NETWORKS_ACTIVE
    Active = 1 << 1,
    /// VIR_CONNECT_LIST_NETWORKS_PERSISTENT
    Persistent = 1 << 2,
    /// VIR_CONNECT_LIST_NETWORKS_TRANSIENT
    Transient = 1 << 3,
    /// VIR_CONNECT_LIST_NETWORKS_AUTOSTART
    Autostart = 1 << 4,
    /// VIR_CONNECT_LIST_NETWORKS_NO_AUTOSTART
    NoAutostart = 1 << 5,
}

/// virNetworkXMLFlags
[Flags]
public enum NetworkXmlFlags : uint
{
    /// VIR_NETWORK_XML_INACTIVE: the persistent definition, not the running one.
    Inactive = 1 << 0,
}

internal static unsafe partial class Native
{
    [LibraryImport(Library)]
    internal static partial int virConnectListAllNetworks(ConnectHandle conn, nint** nets, uint flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial NetworkHandle virNetworkLookupByName(ConnectHandle conn, string name);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial NetworkHandle virNetworkDefineXML(ConnectHandle conn, string xml);

    [LibraryImport(Library)]
    internal static partial int virNetworkFree(nint network);

    [LibraryImport(Library)]
    internal static partial nint virNetworkGetName(NetworkHandle network);

    [LibraryImport(Library)]
    internal static partial int virNetworkGetUUIDString(NetworkHandle network, byte* buf);

    [LibraryImport(Library)]
    internal static partial int virNetworkIsActive(NetworkHandle network);

    [LibraryImport(Library)]
    internal static partial int virNetworkIsPersistent(NetworkHandle network);

    [LibraryImport(Library)]
    internal static partial int virNetworkCreate(NetworkHandle network);

    [LibraryImport(Library)]
    internal static partial int virNetworkDestroy(NetworkHandle network);

    [LibraryImport(Library)]
    internal static partial int virNetworkUndefine(NetworkHandle network);

    [LibraryImport(Library)]
    internal static partial nint virNetworkGetXMLDesc(NetworkHandle network, uint flags);

    [LibraryImport(Library)]
    internal static partial int virNetworkGetAutostart(NetworkHandle network, int* autostart);

    [LibraryImport(Library)]
    internal static partial int virNetworkSetAutostart(NetworkHandle network, int autostart);
}
