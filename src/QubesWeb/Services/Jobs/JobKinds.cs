using QubesWeb.Data.Jobs;

namespace QubesWeb.Services.Jobs;

/// <summary>
/// One kind of job: how it runs, what it checks before it is queued, and what must happen when the process died
/// while it ran (its recovery step runs at start-up, before the qube's lock is released).
/// </summary>
public interface IJobKind
{
    string Kind { get; }

    /// <summary>A sentence for the tasks list, e.g. "Start work".</summary>
    string Describe(string target);

    /// <summary>Refuses, with a message saying what to fix, a job that cannot succeed; nothing is written yet.</summary>
    Task ValidateAsync(string target, CancellationToken ct);

    Task RunAsync(JobContext job, CancellationToken ct);

    Task RecoverAsync(JobContext job, CancellationToken ct);
}

/// <summary>Another job holds the qube's lock; the message names it.</summary>
public sealed class JobConflictException(string message, long holderJobId) : Exception(message)
{
    public long HolderJobId { get; } = holderJobId;
}

/// <summary>What a running job may do: report progress and the step it is on, and write its log.</summary>
public sealed class JobContext(long jobId, string kind, string target, JobEngine engine)
{
    public long JobId { get; } = jobId;
    public string Kind { get; } = kind;
    public string Target { get; } = target;

    public Task LogAsync(string text, JobLogLevel level = JobLogLevel.Info) => engine.AppendLogAsync(JobId, text, level);

    public Task ProgressAsync(int percent, string step) => engine.SetProgressAsync(JobId, percent, step);
}
