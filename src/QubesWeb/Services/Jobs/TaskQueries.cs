using QubesWeb.Data;
using QubesWeb.Data.Jobs;

namespace QubesWeb.Services.Jobs;

/// <summary>
/// What the pages read about tasks (jobs): lists, one task with its log, the sentence that describes it, and the push
/// that says one changed. Reads only; queuing goes through the commands, cancelling through <see cref="TaskCommands"/>.
/// </summary>
public sealed class TaskQueries(JobEngine engine, InventoryWrites writes)
{
    private sealed record Recent(long Version, int Count, Task<List<Job>> Read);

    private Recent? _recent;

    /// <summary>Raised with the job's id whenever a job's state, progress or log changes.</summary>
    public event Action<long>? JobChanged
    {
        add => engine.JobChanged += value;
        remove => engine.JobChanged -= value;
    }

    public string Describe(Job job) => engine.Describe(job);

    public Task<Job?> GetAsync(long jobId, CancellationToken ct = default) => engine.GetAsync(jobId, ct);

    public Task<Job?> FindAsync(long jobId, CancellationToken ct = default) => engine.FindAsync(jobId, ct);

    /// <summary>
    /// The latest <paramref name="count"/> jobs, newest first. Read once and shared by every open page until the next
    /// write to the database (a job's progress is one): many tabs showing the latest tasks cost one read per change.
    /// Callers must not change the jobs.
    /// </summary>
    public async Task<IReadOnlyList<Job>> RecentAsync(int count, CancellationToken ct = default)
    {
        var version = writes.Version;
        if (_recent is { } r && r.Version == version && r.Count == count && !r.Read.IsFaulted && !r.Read.IsCanceled)
            return await r.Read.WaitAsync(ct);
        var read = engine.RecentAsync(count, CancellationToken.None);
        _recent = new(version, count, read);
        return await read.WaitAsync(ct);
    }

    public Task<List<Job>> QueryAsync(JobQuery query, CancellationToken ct = default) => engine.QueryAsync(query, ct);

    public Task<List<JobLogLine>> LogSinceAsync(long jobId, long afterLineId, CancellationToken ct = default) =>
        engine.LogSinceAsync(jobId, afterLineId, ct);
}

/// <summary>What a page can do to a task itself.</summary>
public sealed class TaskCommands(JobEngine engine)
{
    /// <summary>Cancels a queued or running task; false when it had already finished.</summary>
    public Task<bool> CancelAsync(long jobId, CancellationToken ct = default) => engine.CancelAsync(jobId, ct);
}
