// Wraps virConnect* (libvirt-host.h, libvirt-domain.h)
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace QubesWeb.Hypervisor.Libvirt;

/// One hypervisor connection. Safe to share between threads (libvirt serialises calls per connection); callbacks
/// registered here run on the "libvirt-events" thread and must return quickly.
public sealed unsafe partial class Connect : IDisposable
{
    private readonly ConnectHandle _handle;
    private readonly Lock _lock = new();
    // Copy-on-write so the event thread can iterate without taking _lock.
    private volatile (int Id, Action<DomainLifecycleEvent> Callback)[] _lifecycleCallbacks = [];
    private int _lastLifecycleCallbackId;
    private int _nativeLifecycleCallbackId = -1;
    private nint _closeCallbackKey;
    private bool _disposed;

    private Connect(ConnectHandle handle, string uri)
    {
        _handle = handle;
        Uri = uri;
    }

    /// Opens read-write. Fails with a LibvirtException when the hypervisor (or the test driver's node file) is
    /// unreachable.
    public static Connect Open(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        Libvirt.Initialize();
        var handle = LibvirtException.Check(Native.virConnectOpen(uri));
        // libvirt's canonical form (e.g. with a default URI resolved); falls back to what the caller asked for.
        var canonical = Native.virConnectGetURI(handle);
        if (canonical == 0)
        {
            Native.virResetLastError();
            return new Connect(handle, uri);
        }
        return new Connect(handle, Native.TakeString(canonical));
    }

    public string Uri { get; }

    internal ConnectHandle Handle => _handle;

    /// False after Dispose, on a dropped remote connection, or when libvirt cannot tell; never throws.
    public bool IsAlive
    {
        get
        {
            try
            {
                var rc = Native.virConnectIsAlive(_handle);
                if (rc < 0)
                {
                    Native.virResetLastError();
                }
                return rc == 1;
            }
            catch (ObjectDisposedException)
            {
                return false;
            }
        }
    }

    /// Only remote connections speak the keepalive protocol; local drivers (test, and qemu:///system opened
    /// in-process) report "not supported", which is fine since they cannot go silently dead.
    public void SetKeepAlive(int intervalSeconds, uint count)
    {
        if (Native.virConnectSetKeepAlive(_handle, intervalSeconds, count) >= 0)
        {
            return;
        }
        var error = LibvirtException.FromLastError();
        if (error.Code is not (ErrorNumber.NoSupport or ErrorNumber.ArgumentUnsupported
            or ErrorNumber.OperationUnsupported))
        {
            throw error;
        }
    }

    public IReadOnlyList<Domain> ListAllDomains(ConnectListAllDomainsFlags flags = 0)
    {
        nint* array;
        var count = LibvirtException.Check(Native.virConnectListAllDomains(_handle, &array, (uint)flags));
        try
        {
            var domains = new Domain[count];
            for (var i = 0; i < count; i++)
            {
                domains[i] = new Domain(new DomainHandle(array[i]));
            }
            return domains;
        }
        finally
        {
            NativeMemory.Free(array);
        }
    }

    public Domain LookupDomainByName(string name) =>
        name.Contains('\0') ? throw NoSuchDomain(name) : new(LibvirtException.Check(Native.virDomainLookupByName(_handle, name)));

    /// Null only for "no such domain"; any other failure (e.g. a dead connection) still throws. A name holding NUL
    /// names no domain: passed on, C would read only what comes before it ("vault\0x" would find "vault").
    public Domain? TryLookupDomainByName(string name)
    {
        if (name.Contains('\0')) return null;
        var handle = Native.virDomainLookupByName(_handle, name);
        if (!handle.IsInvalid)
        {
            return new Domain(handle);
        }
        var error = LibvirtException.FromLastError();
        return error.Code == ErrorNumber.NoDomain ? null : throw error;
    }

    private static LibvirtException NoSuchDomain(string name) =>
        new($"Domain not found: no domain with matching name '{new string(name.Take(40).Select(c => char.IsControl(c) ? '?' : c).ToArray())}'",
            ErrorNumber.NoDomain, ErrorDomain.Domain, ErrorLevel.Error);

    public Domain LookupDomainByUuid(Guid uuid) =>
        new(LibvirtException.Check(Native.virDomainLookupByUUIDString(_handle, uuid.ToString("D"))));

    /// Defines a new persistent domain or, with a known name and UUID, replaces its configuration.
    public Domain DefineDomainXml(string xml) =>
        new(LibvirtException.Check(Native.virDomainDefineXML(_handle, xml)));

    public IReadOnlyList<DomainStatsRecord> GetAllDomainStats(DomainStatsTypes stats,
        ConnectGetAllDomainStatsFlags flags = 0) =>
        DomainStatsRecord.GetAll(_handle, stats, flags);

    /// Returns an id for DeregisterDomainEventCallback. Events for every domain of this connection arrive on the
    /// "libvirt-events" thread, in the order they happened; an exception thrown by the callback is reported
    /// through Libvirt.CallbackException and does not stop delivery to other callbacks.
    public int RegisterDomainLifecycleCallback(Action<DomainLifecycleEvent> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_nativeLifecycleCallbackId < 0)
            {
                _nativeLifecycleCallbackId = Events.RegisterLifecycle(_handle, DispatchLifecycle);
            }
            var id = ++_lastLifecycleCallbackId;
            _lifecycleCallbacks = [.. _lifecycleCallbacks, (id, callback)];
            return id;
        }
    }

    /// Once this returns no new event reaches the callback; one already being delivered on the event thread
    /// may still finish.
    public void DeregisterDomainEventCallback(int callbackId)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var remaining = _lifecycleCallbacks.Where(c => c.Id != callbackId).ToArray();
            if (remaining.Length == _lifecycleCallbacks.Length)
            {
                throw new ArgumentException($"No event callback with id {callbackId} is registered.",
                    nameof(callbackId));
            }
            _lifecycleCallbacks = remaining;
        }
    }

    private void DispatchLifecycle(DomainLifecycleEvent e)
    {
        foreach (var (_, callback) in _lifecycleCallbacks)
        {
            try
            {
                callback(e);
            }
            catch (Exception exception)
            {
                Libvirt.ReportCallbackException(exception);
            }
        }
    }

    /// Fires when libvirt notices the connection is gone (remote drivers only: EOF, keepalive timeout, I/O
    /// error). One per connection, as in libvirt; a second registration throws InvalidOperationException even on
    /// local drivers, which accept and ignore close callbacks.
    public void RegisterCloseCallback(Action<ConnectCloseReason> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_closeCallbackKey != 0)
            {
                throw new InvalidOperationException("A close callback is already registered on this connection.");
            }
            _closeCallbackKey = Events.RegisterClose(_handle, callback);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            // Best effort: the connection is going away anyway, and closing it releases the rest in libvirt.
            _lifecycleCallbacks = [];
            if (_nativeLifecycleCallbackId >= 0 &&
                Native.virConnectDomainEventDeregisterAny(_handle, _nativeLifecycleCallbackId) < 0)
            {
                Native.virResetLastError();
            }
            if (_closeCallbackKey != 0 && !Events.UnregisterClose(_handle, _closeCallbackKey))
            {
                Native.virResetLastError();
            }
            _handle.Dispose();
        }
    }
}

internal sealed class ConnectHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public ConnectHandle() : base(ownsHandle: true)
    {
    }

    /// virConnectClose returns the remaining reference count; domains still alive keep the connection open.
    protected override bool ReleaseHandle() => Native.virConnectClose(handle) >= 0;
}

/// virConnectListAllDomainsFlags. Pairs (Active/Inactive, Persistent/Transient, ...) filter independently;
/// setting neither of a pair means both.
[Flags]
public enum ConnectListAllDomainsFlags : uint
{
    /// VIR_CONNECT_LIST_DOMAINS_ACTIVE
    Active = 1 << 0,
    /// VIR_CONNECT_LIST_DOMAINS_INACTIVE
    Inactive = 1 << 1,
    /// VIR_CONNECT_LIST_DOMAINS_PERSISTENT
    Persistent = 1 << 2,
    /// VIR_CONNECT_LIST_DOMAINS_TRANSIENT
    Transient = 1 << 3,
    /// VIR_CONNECT_LIST_DOMAINS_RUNNING
    Running = 1 << 4,
    /// VIR_CONNECT_LIST_DOMAINS_PAUSED
    Paused = 1 << 5,
    /// VIR_CONNECT_LIST_DOMAINS_SHUTOFF
    Shutoff = 1 << 6,
    /// VIR_CONNECT_LIST_DOMAINS_OTHER
    Other = 1 << 7,
    /// VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE
    ManagedSave = 1 << 8,
    /// VIR_CONNECT_LIST_DOMAINS_NO_MANAGEDSAVE
    NoManagedSave = 1 << 9,
    /// VIR_CONNECT_LIST_DOMAINS_AUTOSTART
    Autostart = 1 << 10,
    /// VIR_CONNECT_LIST_DOMAINS_NO_AUTOSTART
    NoAutostart = 1 << 11,
    /// VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT
    HasSnapshot = 1 << 12,
    /// VIR_CONNECT_LIST_DOMAINS_NO_SNAPSHOT
    NoSnapshot = 1 << 13,
    /// VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT
    HasCheckpoint = 1 << 14,
    /// VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT
    NoCheckpoint = 1 << 15,
}

internal static unsafe partial class Native
{
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial ConnectHandle virConnectOpen(string name);

    [LibraryImport(Library)]
    internal static partial int virConnectClose(nint conn);

    [LibraryImport(Library)]
    internal static partial nint virConnectGetURI(ConnectHandle conn);

    [LibraryImport(Library)]
    internal static partial int virConnectIsAlive(ConnectHandle conn);

    [LibraryImport(Library)]
    internal static partial int virConnectSetKeepAlive(ConnectHandle conn, int interval, uint count);

    [LibraryImport(Library)]
    internal static partial int virConnectListAllDomains(ConnectHandle conn, nint** domains, uint flags);
}
