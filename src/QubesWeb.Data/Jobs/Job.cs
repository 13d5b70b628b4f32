namespace QubesWeb.Data.Jobs;

public enum JobState
{
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,

    /// <summary>The process died while the job ran; its kind's recovery step has run.</summary>
    Interrupted,
}

/// <summary>An operation that changes a qube, persisted so it outlives the browser tab and the process.</summary>
public class Job
{
    public long Id { get; set; }
    public required string Kind { get; set; }

    /// <summary>The qube the job acts on (its name; a job outlives a removed qube).</summary>
    public required string Target { get; set; }

    /// <summary>The job's parameters as JSON, for kinds that need more than a target (e.g. a new qube's properties).</summary>
    public string? Arguments { get; set; }

    public JobState State { get; set; }
    public int Progress { get; set; }
    public string? Step { get; set; }
    public string? Error { get; set; }
    public DateTime CreatedUtc { get; set; }
    public DateTime? StartedUtc { get; set; }
    public DateTime? FinishedUtc { get; set; }
    public List<JobLogLine> Log { get; set; } = [];

    public bool IsFinished => State is JobState.Succeeded or JobState.Failed or JobState.Cancelled or JobState.Interrupted;
}

public enum JobLogLevel
{
    Info,
    Warning,
    Error,
}

public class JobLogLine
{
    public long Id { get; set; }
    public long JobId { get; set; }
    public DateTime TimeUtc { get; set; }
    public JobLogLevel Level { get; set; }
    public required string Text { get; set; }
}

/// <summary>
/// A per-qube lock held by a job (as Proxmox's <c>lock</c> property). The qube name is the key, so taking a lock
/// is one INSERT and two jobs can never both hold it.
/// </summary>
public class QubeLock
{
    public required string QubeName { get; set; }
    public long JobId { get; set; }
    public DateTime AcquiredUtc { get; set; }
}
