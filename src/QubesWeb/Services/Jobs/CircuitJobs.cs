using System.Collections.Concurrent;

namespace QubesWeb.Services.Jobs;

/// <summary>
/// The jobs this browser tab started (scoped to the circuit), so the layout can say how each one ended. The jobs
/// themselves do not depend on it: they go on when the tab closes.
/// </summary>
public sealed class CircuitJobs
{
    private readonly ConcurrentDictionary<long, byte> _mine = new();

    public void Track(long jobId) => _mine[jobId] = 0;

    public bool IsMine(long jobId) => _mine.ContainsKey(jobId);

    public void Forget(long jobId) => _mine.TryRemove(jobId, out _);
}
