using System.Collections.Concurrent;

namespace QubesWeb.Services.Storage;

/// <summary>
/// The per-qube lock and the revision pins every storage step shares, whichever service makes it: a commit, a
/// merge, a revert, a compaction and recovery must never interleave on one root, and retention must see every pin.
/// An AppVM's steps also take its template's lock, always after their own, so the order is fixed and cannot deadlock.
/// </summary>
public sealed class RootLocks
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(int Volume, int Revision), int> _pins = new();

    public async Task<IDisposable> LockAsync(string name, CancellationToken ct)
    {
        var gate = _locks.GetOrAdd(name, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        return new Releaser(gate);
    }

    private sealed class Releaser(SemaphoreSlim gate) : IDisposable
    {
        private int _done;
        public void Dispose() { if (Interlocked.Exchange(ref _done, 1) == 0) gate.Release(); }
    }

    /// <summary>
    /// Keeps a revision from being merged away or deleted while something outside a running qube reads it (a copy
    /// into a new standalone or template); dispose to let go.
    /// </summary>
    public IDisposable Pin(int volumeId, int revision)
    {
        _pins.AddOrUpdate((volumeId, revision), 1, (_, n) => n + 1);
        return new Unpin(this, (volumeId, revision));
    }

    /// <summary>The revisions of root volume <paramref name="volumeId"/> that something holds a pin on now.</summary>
    public IEnumerable<int> PinnedRevisions(int volumeId) => _pins.Keys.Where(k => k.Volume == volumeId).Select(k => k.Revision);

    private sealed class Unpin(RootLocks owner, (int, int) key) : IDisposable
    {
        private int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0) return;
            owner._pins.AddOrUpdate(key, 0, (_, n) => n - 1);
            if (owner._pins.TryGetValue(key, out var left) && left <= 0) owner._pins.TryRemove(key, out _);
        }
    }
}
