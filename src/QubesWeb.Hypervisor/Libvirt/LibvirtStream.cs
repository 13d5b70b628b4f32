// Wraps virStream* (libvirt-stream.h)
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace QubesWeb.Hypervisor.Libvirt;

/// An owned virStreamPtr (named so, not Stream, beside System.IO.Stream): a byte channel to a domain's console, a screenshot, and the like. Made with
/// <see cref="New"/> and then handed to the call that opens the other end (virDomainOpenConsole,
/// virDomainScreenshot). A non-blocking stream answers <see cref="Receive"/> and <see cref="Send"/> with
/// <see cref="WouldBlock"/> instead of waiting; its readiness comes through <see cref="AddCallback"/>, run on the
/// "libvirt-events" thread.
public sealed unsafe class LibvirtStream : IDisposable
{
    /// What Receive and Send return when a non-blocking stream has no data or no room now (libvirt's -2).
    public const int WouldBlock = -2;

    private readonly StreamHandle _handle;
    private nint _callbackKey;

    private LibvirtStream(StreamHandle handle) => _handle = handle;

    internal StreamHandle Handle => _handle;

    public static LibvirtStream New(Connect connect, StreamFlags flags = 0) =>
        new(LibvirtException.Check(Native.virStreamNew(connect.Handle, (uint)flags)));

    /// Bytes read into <paramref name="buffer"/>; 0 at the end of the stream; <see cref="WouldBlock"/> when a
    /// non-blocking stream has nothing now.
    public int Receive(Span<byte> buffer)
    {
        fixed (byte* data = buffer)
        {
            var n = Native.virStreamRecv(_handle, data, (nuint)buffer.Length);
            return n == WouldBlock ? n : LibvirtException.Check(n);
        }
    }

    /// Bytes taken from <paramref name="data"/> (possibly fewer than given); <see cref="WouldBlock"/> when a
    /// non-blocking stream has no room now.
    public int Send(ReadOnlySpan<byte> data)
    {
        fixed (byte* bytes = data)
        {
            var n = Native.virStreamSend(_handle, bytes, (nuint)data.Length);
            return n == WouldBlock ? n : LibvirtException.Check(n);
        }
    }

    /// Ends a stream whose data was all read or written; errors that happened on the other end surface here.
    public void Finish() => LibvirtException.Check(Native.virStreamFinish(_handle));

    /// Ends the stream at once, telling the other end that the transfer failed or was given up.
    public void Abort() => LibvirtException.Check(Native.virStreamAbort(_handle));

    /// Calls <paramref name="callback"/> on the event loop thread whenever one of <paramref name="events"/> holds.
    /// One callback per stream, as libvirt allows; it must not block, since it holds up every libvirt event.
    public void AddCallback(StreamEventType events, Action<StreamEventType> callback)
    {
        if (_callbackKey != 0) throw new InvalidOperationException("This stream already has an event callback; libvirt allows one.");
        var key = StreamEvents.Add(callback);
        if (Native.virStreamEventAddCallback(_handle, (int)events, &StreamEvents.OnEvent, key, &StreamEvents.OnFree) < 0)
        {
            var error = LibvirtException.FromLastError();
            StreamEvents.Remove(key);
            throw error;
        }
        _callbackKey = key;
    }

    /// Changes which events the callback is called for (e.g. Writable only while data waits to be sent).
    public void UpdateCallback(StreamEventType events) =>
        LibvirtException.Check(Native.virStreamEventUpdateCallback(_handle, (int)events));

    public void RemoveCallback()
    {
        if (_callbackKey == 0) return;
        LibvirtException.Check(Native.virStreamEventRemoveCallback(_handle));
        // libvirt normally ran the free callback already; this covers one it runs late.
        StreamEvents.Remove(_callbackKey);
        _callbackKey = 0;
    }

    public void Dispose()
    {
        if (_callbackKey != 0)
        {
            if (Native.virStreamEventRemoveCallback(_handle) < 0) Native.virResetLastError();
            StreamEvents.Remove(_callbackKey);
            _callbackKey = 0;
        }
        _handle.Dispose();
    }
}

/// The managed side of stream callbacks; opaque is a key into a table, as for domain events (see Events).
internal static unsafe class StreamEvents
{
    private static readonly ConcurrentDictionary<nint, Action<StreamEventType>> Callbacks = new();
    private static long _nextKey;

    internal static nint Add(Action<StreamEventType> callback)
    {
        var key = (nint)Interlocked.Increment(ref _nextKey);
        Callbacks[key] = callback;
        return key;
    }

    internal static void Remove(nint key) => Callbacks.TryRemove(key, out _);

    [UnmanagedCallersOnly]
    internal static void OnEvent(nint stream, int events, nint opaque)
    {
        // An exception crossing back into libvirt's C frames would tear down the process.
        try
        {
            if (Callbacks.TryGetValue(opaque, out var callback)) callback((StreamEventType)events);
        }
        catch (Exception exception)
        {
            Libvirt.ReportCallbackException(exception);
        }
    }

    [UnmanagedCallersOnly]
    internal static void OnFree(nint opaque) => Callbacks.TryRemove(opaque, out _);
}

internal sealed class StreamHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public StreamHandle() : base(ownsHandle: true)
    {
    }

    protected override bool ReleaseHandle() => Native.virStreamFree(handle) == 0;
}

/// virStreamFlags
[Flags]
public enum StreamFlags : uint
{
    /// VIR_STREAM_NONBLOCK
    NonBlock = 1 << 0,
}

/// virStreamEventType
[Flags]
public enum StreamEventType
{
    /// VIR_STREAM_EVENT_READABLE
    Readable = 1 << 0,
    /// VIR_STREAM_EVENT_WRITABLE
    Writable = 1 << 1,
    /// VIR_STREAM_EVENT_ERROR
    Error = 1 << 2,
    /// VIR_STREAM_EVENT_HANGUP
    Hangup = 1 << 3,
}

internal static unsafe partial class Native
{
    [LibraryImport(Library)]
    internal static partial StreamHandle virStreamNew(ConnectHandle conn, uint flags);

    [LibraryImport(Library)]
    internal static partial int virStreamRecv(StreamHandle stream, byte* data, nuint nbytes);

    [LibraryImport(Library)]
    internal static partial int virStreamSend(StreamHandle stream, byte* data, nuint nbytes);

    [LibraryImport(Library)]
    internal static partial int virStreamFinish(StreamHandle stream);

    [LibraryImport(Library)]
    internal static partial int virStreamAbort(StreamHandle stream);

    [LibraryImport(Library)]
    internal static partial int virStreamFree(nint stream);

    [LibraryImport(Library)]
    internal static partial int virStreamEventAddCallback(StreamHandle stream, int events,
        delegate* unmanaged<nint, int, nint, void> callback, nint opaque, delegate* unmanaged<nint, void> free);

    [LibraryImport(Library)]
    internal static partial int virStreamEventUpdateCallback(StreamHandle stream, int events);

    [LibraryImport(Library)]
    internal static partial int virStreamEventRemoveCallback(StreamHandle stream);
}
