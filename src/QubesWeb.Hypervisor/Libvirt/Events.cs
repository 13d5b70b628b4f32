// Wraps virConnectDomainEventRegisterAny / virConnectRegisterCloseCallback (libvirt-domain.h, libvirt-host.h)
using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace QubesWeb.Hypervisor.Libvirt;

/// A lifecycle event, copied out of libvirt's borrowed domain pointer while the callback ran. Detail is the
/// value of the detail enum matching Event (DomainEventStoppedDetailType for Stopped, ...).
public sealed record DomainLifecycleEvent(string Name, Guid Uuid, DomainEventType Event, int Detail);

/// The managed side of callbacks handed to libvirt. opaque is a key into a table rather than a GCHandle so that a
/// free callback that libvirt runs late, or not at all (drivers without close-callback support never store it),
/// is harmless.
internal static unsafe class Events
{
    private const int EventIdLifecycle = 0; // VIR_DOMAIN_EVENT_ID_LIFECYCLE

    private static readonly ConcurrentDictionary<nint, Delegate> Callbacks = new();
    private static long _nextKey;

    /// libvirt refuses a second registration of the same C function for the same event on one connection
    /// ("event callback already tracked"), whatever the opaque, so each Connect registers once and fans out.
    internal static int RegisterLifecycle(ConnectHandle conn, Action<DomainLifecycleEvent> dispatch)
    {
        var key = Add(dispatch);
        var id = Native.virConnectDomainEventRegisterAny(conn, 0, EventIdLifecycle, &OnLifecycle, key, &OnFree);
        if (id < 0)
        {
            var error = LibvirtException.FromLastError();
            Callbacks.TryRemove(key, out _);
            throw error;
        }
        return id;
    }

    /// Returns the key to hand to UnregisterClose.
    internal static nint RegisterClose(ConnectHandle conn, Action<ConnectCloseReason> callback)
    {
        var key = Add(callback);
        if (Native.virConnectRegisterCloseCallback(conn, &OnClose, key, &OnFree) < 0)
        {
            var error = LibvirtException.FromLastError();
            Callbacks.TryRemove(key, out _);
            throw error;
        }
        return key;
    }

    /// False with libvirt's error left pending on this thread when libvirt refused.
    internal static bool UnregisterClose(ConnectHandle conn, nint key)
    {
        var ok = Native.virConnectUnregisterCloseCallback(conn, &OnClose) >= 0;
        // libvirt normally ran OnFree already; this covers drivers that never stored the callback.
        Callbacks.TryRemove(key, out _);
        return ok;
    }

    private static nint Add(Delegate callback)
    {
        var key = (nint)Interlocked.Increment(ref _nextKey);
        Callbacks[key] = callback;
        return key;
    }

    [UnmanagedCallersOnly]
    private static int OnLifecycle(nint conn, nint dom, int eventType, int detail, nint opaque)
    {
        // An exception crossing back into libvirt's C frames would tear down the process.
        try
        {
            if (Callbacks.TryGetValue(opaque, out var callback))
            {
                // dom is borrowed for the duration of this call only.
                var name = Native.virDomainGetName(dom);
                var uuid = stackalloc byte[Native.UuidStringBufferLength];
                if (name == 0 || Native.virDomainGetUUIDString(dom, uuid) < 0)
                {
                    Native.virResetLastError();
                    return 0;
                }
                ((Action<DomainLifecycleEvent>)callback)(new DomainLifecycleEvent(
                    Marshal.PtrToStringUTF8(name)!, Guid.Parse(Marshal.PtrToStringUTF8((nint)uuid)!),
                    (DomainEventType)eventType, detail));
            }
        }
        catch (Exception exception)
        {
            Libvirt.ReportCallbackException(exception);
        }
        return 0;
    }

    [UnmanagedCallersOnly]
    private static void OnClose(nint conn, int reason, nint opaque)
    {
        try
        {
            if (Callbacks.TryGetValue(opaque, out var callback))
            {
                ((Action<ConnectCloseReason>)callback)((ConnectCloseReason)reason);
            }
        }
        catch (Exception exception)
        {
            Libvirt.ReportCallbackException(exception);
        }
    }

    [UnmanagedCallersOnly]
    private static void OnFree(nint opaque) => Callbacks.TryRemove(opaque, out _);
}

/// virDomainEventType
public enum DomainEventType
{
    /// VIR_DOMAIN_EVENT_DEFINED
    Defined = 0,
    /// VIR_DOMAIN_EVENT_UNDEFINED
    Undefined = 1,
    /// VIR_DOMAIN_EVENT_STARTED
    Started = 2,
    /// VIR_DOMAIN_EVENT_SUSPENDED
    Suspended = 3,
    /// VIR_DOMAIN_EVENT_RESUMED
    Resumed = 4,
    /// VIR_DOMAIN_EVENT_STOPPED
    Stopped = 5,
    /// VIR_DOMAIN_EVENT_SHUTDOWN
    Shutdown = 6,
    /// VIR_DOMAIN_EVENT_PMSUSPENDED
    PMSuspended = 7,
    /// VIR_DOMAIN_EVENT_CRASHED
    Crashed = 8,
}

/// virDomainEventDefinedDetailType
public enum DomainEventDefinedDetailType
{
    /// VIR_DOMAIN_EVENT_DEFINED_ADDED
    Added = 0,
    /// VIR_DOMAIN_EVENT_DEFINED_UPDATED
    Updated = 1,
    /// VIR_DOMAIN_EVENT_DEFINED_RENAMED
    Renamed = 2,
    /// VIR_DOMAIN_EVENT_DEFINED_FROM_SNAPSHOT
    FromSnapshot = 3,
}

/// virDomainEventUndefinedDetailType
public enum DomainEventUndefinedDetailType
{
    /// VIR_DOMAIN_EVENT_UNDEFINED_REMOVED
    Removed = 0,
    /// VIR_DOMAIN_EVENT_UNDEFINED_RENAMED
    Renamed = 1,
}

/// virDomainEventStartedDetailType
public enum DomainEventStartedDetailType
{
    /// VIR_DOMAIN_EVENT_STARTED_BOOTED
    Booted = 0,
    /// VIR_DOMAIN_EVENT_STARTED_MIGRATED
    Migrated = 1,
    /// VIR_DOMAIN_EVENT_STARTED_RESTORED
    Restored = 2,
    /// VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT
    FromSnapshot = 3,
    /// VIR_DOMAIN_EVENT_STARTED_WAKEUP
    Wakeup = 4,
}

/// virDomainEventSuspendedDetailType
public enum DomainEventSuspendedDetailType
{
    /// VIR_DOMAIN_EVENT_SUSPENDED_PAUSED
    Paused = 0,
    /// VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED
    Migrated = 1,
    /// VIR_DOMAIN_EVENT_SUSPENDED_IOERROR
    IOError = 2,
    /// VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG
    Watchdog = 3,
    /// VIR_DOMAIN_EVENT_SUSPENDED_RESTORED
    Restored = 4,
    /// VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT
    FromSnapshot = 5,
    /// VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR
    ApiError = 6,
    /// VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY
    Postcopy = 7,
    /// VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED
    PostcopyFailed = 8,
}

/// virDomainEventResumedDetailType
public enum DomainEventResumedDetailType
{
    /// VIR_DOMAIN_EVENT_RESUMED_UNPAUSED
    Unpaused = 0,
    /// VIR_DOMAIN_EVENT_RESUMED_MIGRATED
    Migrated = 1,
    /// VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT
    FromSnapshot = 2,
    /// VIR_DOMAIN_EVENT_RESUMED_POSTCOPY
    Postcopy = 3,
    /// VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED
    PostcopyFailed = 4,
}

/// virDomainEventStoppedDetailType
public enum DomainEventStoppedDetailType
{
    /// VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN
    Shutdown = 0,
    /// VIR_DOMAIN_EVENT_STOPPED_DESTROYED
    Destroyed = 1,
    /// VIR_DOMAIN_EVENT_STOPPED_CRASHED
    Crashed = 2,
    /// VIR_DOMAIN_EVENT_STOPPED_MIGRATED
    Migrated = 3,
    /// VIR_DOMAIN_EVENT_STOPPED_SAVED
    Saved = 4,
    /// VIR_DOMAIN_EVENT_STOPPED_FAILED
    Failed = 5,
    /// VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT
    FromSnapshot = 6,
}

/// virDomainEventShutdownDetailType
public enum DomainEventShutdownDetailType
{
    /// VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED
    Finished = 0,
    /// VIR_DOMAIN_EVENT_SHUTDOWN_GUEST
    Guest = 1,
    /// VIR_DOMAIN_EVENT_SHUTDOWN_HOST
    Host = 2,
}

/// virConnectCloseReason
public enum ConnectCloseReason
{
    /// VIR_CONNECT_CLOSE_REASON_ERROR
    Error = 0,
    /// VIR_CONNECT_CLOSE_REASON_EOF
    Eof = 1,
    /// VIR_CONNECT_CLOSE_REASON_KEEPALIVE
    Keepalive = 2,
    /// VIR_CONNECT_CLOSE_REASON_CLIENT
    Client = 3,
}

internal static unsafe partial class Native
{
    [LibraryImport(Library)]
    internal static partial int virConnectDomainEventRegisterAny(ConnectHandle conn, nint dom, int eventID,
        delegate* unmanaged<nint, nint, int, int, nint, int> cb, nint opaque, delegate* unmanaged<nint, void> freecb);

    [LibraryImport(Library)]
    internal static partial int virConnectDomainEventDeregisterAny(ConnectHandle conn, int callbackID);

    [LibraryImport(Library)]
    internal static partial int virConnectRegisterCloseCallback(ConnectHandle conn,
        delegate* unmanaged<nint, int, nint, void> cb, nint opaque, delegate* unmanaged<nint, void> freecb);

    [LibraryImport(Library)]
    internal static partial int virConnectUnregisterCloseCallback(ConnectHandle conn,
        delegate* unmanaged<nint, int, nint, void> cb);
}
