// Async reads and writes over a non-blocking virStream, driven by its event callback (libvirt-stream.h)
namespace QubesWeb.Hypervisor.Libvirt;

/// A non-blocking <see cref="Stream"/> read and written with async calls, as virsh's console relay does it with
/// poll: a call that would block arms the stream's callback for that direction and waits for it. Stream callbacks
/// are level-triggered (libvirt calls them again and again while the condition holds), so each direction is
/// disarmed when it fires and armed again only by the call that waits for it; an idle stream costs nothing.
/// One reader and one writer at a time. Owns the stream.
public sealed class StreamPipe : IDisposable
{
    private readonly LibvirtStream _stream;
    private readonly Lock _lock = new();
    private StreamEventType _armed;
    private TaskCompletionSource? _readable, _writable;
    private bool _disposed;

    /// <param name="stream">Made with <see cref="StreamFlags.NonBlock"/>, already connected to its other end.</param>
    public StreamPipe(LibvirtStream stream)
    {
        _stream = stream;
        _stream.AddCallback(0, OnEvent);
    }

    /// Bytes read into <paramref name="buffer"/>, waiting until some come; 0 at the end of the stream.
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                var n = _stream.Receive(buffer.Span);
                if (n != LibvirtStream.WouldBlock) return n;
                _readable ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _readable.Task;
                Arm(StreamEventType.Readable);
            }
            await wait.WaitAsync(ct);
        }
    }

    /// Sends all of <paramref name="data"/>, waiting for room as often as needed.
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        while (!data.IsEmpty)
        {
            Task? wait = null;
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                var n = _stream.Send(data.Span);
                if (n == LibvirtStream.WouldBlock)
                {
                    _writable ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    wait = _writable.Task;
                    Arm(StreamEventType.Writable);
                }
                else
                    data = data[n..];
            }
            if (wait is not null) await wait.WaitAsync(ct);
        }
    }

    /// Ends the stream normally (all read or written); the other end's errors surface here.
    public void Finish()
    {
        lock (_lock) _stream.Finish();
    }

    /// Ends the stream at once; a pending read or write then fails with libvirt's error.
    public void Abort()
    {
        lock (_lock)
        {
            _stream.Abort();
            Release(StreamEventType.Readable | StreamEventType.Writable);
        }
    }

    private void Arm(StreamEventType events)
    {
        if ((_armed & events) == events) return;
        _armed |= events;
        // With an error or hang-up pending, libvirt reports it whatever is asked for; asking for both covers a close.
        _stream.UpdateCallback(_armed);
    }

    /// On the libvirt event thread.
    private void OnEvent(StreamEventType events)
    {
        lock (_lock)
        {
            if (_disposed) return;
            // An error or hang-up wakes both directions: their next call sees it (an exception, or 0 for the reader).
            var woken = events.HasFlag(StreamEventType.Error) || events.HasFlag(StreamEventType.Hangup)
                ? StreamEventType.Readable | StreamEventType.Writable
                : events & (StreamEventType.Readable | StreamEventType.Writable);
            Release(woken);
            _armed &= ~woken;
            _stream.UpdateCallback(_armed);
        }
    }

    private void Release(StreamEventType events)
    {
        if (events.HasFlag(StreamEventType.Readable)) { _readable?.TrySetResult(); _readable = null; }
        if (events.HasFlag(StreamEventType.Writable)) { _writable?.TrySetResult(); _writable = null; }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            _readable?.TrySetException(new ObjectDisposedException(nameof(StreamPipe)));
            _writable?.TrySetException(new ObjectDisposedException(nameof(StreamPipe)));
        }
        _stream.Dispose();
    }
}
