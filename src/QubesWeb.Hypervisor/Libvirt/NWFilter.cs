// Wraps virNWFilter* and the virConnect*NWFilter* calls (libvirt-nwfilter.h)
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace QubesWeb.Hypervisor.Libvirt;

/// An owned virNWFilterPtr: a named set of traffic rules that libvirt applies on the host (ebtables, iptables) to every
/// guest interface whose XML refers to it (<c>&lt;filterref filter='NAME'&gt;</c>), where the guest cannot reach them.
public sealed unsafe class NWFilter : IDisposable
{
    private readonly NWFilterHandle _handle;

    internal NWFilter(NWFilterHandle handle) => _handle = handle;

    public string Name =>
        Marshal.PtrToStringUTF8(LibvirtException.Check(Native.virNWFilterGetName(_handle)))!;

    public Guid Uuid
    {
        get
        {
            var buffer = stackalloc byte[Native.UuidStringBufferLength];
            LibvirtException.Check(Native.virNWFilterGetUUIDString(_handle, buffer));
            return Guid.Parse(Marshal.PtrToStringUTF8((nint)buffer)!);
        }
    }

    public string GetXmlDesc() =>
        Native.TakeString(LibvirtException.Check(Native.virNWFilterGetXMLDesc(_handle, 0)));

    /// Refused by libvirt while an interface or another filter still refers to it.
    public void Undefine() => LibvirtException.Check(Native.virNWFilterUndefine(_handle));

    public void Dispose() => _handle.Dispose();
}

public sealed unsafe partial class Connect
{
    public IReadOnlyList<NWFilter> ListAllNWFilters()
    {
        nint* array;
        var count = LibvirtException.Check(Native.virConnectListAllNWFilters(Handle, &array, 0));
        try
        {
            var filters = new NWFilter[count];
            for (var i = 0; i < count; i++)
            {
                filters[i] = new NWFilter(new NWFilterHandle(array[i]));
            }
            return filters;
        }
        finally
        {
            NativeMemory.Free(array);
        }
    }

    /// Null only for "no such filter"; any other failure still throws. A name holding NUL names no filter.
    public NWFilter? TryLookupNWFilterByName(string name)
    {
        if (name.Contains('\0')) return null;
        var handle = Native.virNWFilterLookupByName(Handle, name);
        if (!handle.IsInvalid)
        {
            return new NWFilter(handle);
        }
        var error = LibvirtException.FromLastError();
        return error.Code == ErrorNumber.NoNwfilter ? null : throw error;
    }

    /// Defines a filter or, with a known name and UUID, replaces its rules: libvirt applies the new rules at once to
    /// every interface that uses it.
    public NWFilter DefineNWFilterXml(string xml) =>
        new(LibvirtException.Check(Native.virNWFilterDefineXML(Handle, xml)));
}

internal sealed class NWFilterHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public NWFilterHandle() : base(ownsHandle: true)
    {
    }

    internal NWFilterHandle(nint pointer) : base(ownsHandle: true) => SetHandle(pointer);

    protected override bool ReleaseHandle() => Native.virNWFilterFree(handle) == 0;
}

internal static unsafe partial class Native
{
    [LibraryImport(Library)]
    internal static partial int virConnectListAllNWFilters(ConnectHandle conn, nint** filters, uint flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial NWFilterHandle virNWFilterLookupByName(ConnectHandle conn, string name);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial NWFilterHandle virNWFilterDefineXML(ConnectHandle conn, string xml);

    [LibraryImport(Library)]
    internal static partial int virNWFilterFree(nint filter);

    [LibraryImport(Library)]
    internal static partial nint virNWFilterGetName(NWFilterHandle filter);

    [LibraryImport(Library)]
    internal static partial int virNWFilterGetUUIDString(NWFilterHandle filter, byte* buf);

    [LibraryImport(Library)]
    internal static partial nint virNWFilterGetXMLDesc(NWFilterHandle filter, uint flags);

    [LibraryImport(Library)]
    internal static partial int virNWFilterUndefine(NWFilterHandle filter);
}
