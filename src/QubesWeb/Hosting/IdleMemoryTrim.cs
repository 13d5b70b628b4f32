using System.Runtime;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Components.Server.Circuits;

namespace QubesWeb.Hosting;

/// <summary>
/// Gives memory back to dom0 once tabs have closed and the console has been quiet for a while. dom0's memory is what
/// every qube's start is weighed against; after a wave of tabs the runtime and the C library keep what they freed for
/// reuse (the collector its reserve, glibc's malloc the pages the compiler and native code freed), which reads as a
/// console that grew for good. Measured with the load benchmark: 200 closed tabs left about 20 MiB in glibc's heap
/// that <c>malloc_trim</c> gives back.
/// </summary>
public sealed class IdleMemoryTrim(ILogger<IdleMemoryTrim> log, TimeProvider? time = null) : IDisposable
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>How long no circuit may open or close before the trim: a burst of closing tabs is trimmed once.</summary>
    public static readonly TimeSpan Quiet = TimeSpan.FromSeconds(20);

    private readonly Lock _gate = new();
    private ITimer? _timer;
    private bool _disposed;
    private int _trims;

    /// <summary>How many trims ran.</summary>
    public int Trims => Volatile.Read(ref _trims);

    /// <summary>A circuit opened or closed: the trim waits for <see cref="Quiet"/> after the last one, and runs only after a close.</summary>
    public void CircuitOpened()
    {
        lock (_gate) _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public void CircuitClosed()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _timer ??= _time.CreateTimer(_ => Trim(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _timer.Change(Quiet, Timeout.InfiniteTimeSpan);
        }
    }

    private void Trim()
    {
        var before = Environment.WorkingSet;
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        try
        {
            MallocTrim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl has no malloc_trim): the collection alone is what can be given back.
        }
        Interlocked.Increment(ref _trims);
        log.LogDebug("Tabs closed and the console was quiet: memory trimmed from {Before} MiB to {After} MiB", before >> 20, Environment.WorkingSet >> 20);
    }

    // DllImport, not LibraryImport: the web project allows no unsafe code, and this one blittable call needs none.
    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _timer?.Dispose();
        }
    }

    /// <summary>Tells the trim about each circuit of the console.</summary>
    public sealed class CircuitWatch(IdleMemoryTrim trim) : CircuitHandler
    {
        public override Task OnCircuitOpenedAsync(Circuit circuit, CancellationToken cancellationToken)
        {
            trim.CircuitOpened();
            return Task.CompletedTask;
        }

        public override Task OnCircuitClosedAsync(Circuit circuit, CancellationToken cancellationToken)
        {
            trim.CircuitClosed();
            return Task.CompletedTask;
        }
    }
}
