using QubesWeb.Data.Jobs;

namespace QubesWeb.Services.Jobs;

/// <summary>
/// One kind of job: how it runs, what it checks before it is queued, and what must happen when the process died
/// while it ran (its recovery step runs at start-up, before the qube's lock is released).
/// </summary>
public interface IJobKind
{
    JobKind Kind { get; }

    /// <summary>A sentence for the tasks list, e.g. "Start work".</summary>
    string Describe(string target);

    /// <summary>Refuses, with a message saying what to fix, a job that cannot succeed; nothing is written yet.</summary>
    Task ValidateAsync(string target, string? arguments, CancellationToken ct);

    Task RunAsync(JobContext job, CancellationToken ct);

    Task RecoverAsync(JobContext job, CancellationToken ct);

    /// <summary>
    /// A job that queues other jobs and waits for them: it runs beside the workers, never on one, so it cannot take
    /// the worker its own children need.
    /// </summary>
    bool Orchestrates => false;

    /// <summary>
    /// The name of the lock the job holds while queued or running: the qube it acts on, unless the kind acts through
    /// other jobs (which take the qubes' locks themselves) and only must not run twice at once.
    /// </summary>
    string LockName(string target) => target;
}

/// <summary>Another job holds the qube's lock; the message names it.</summary>
public sealed class JobConflictException(string message, long holderJobId) : RefusalException(message)
{
    public long HolderJobId { get; } = holderJobId;
}

/// <summary>What a running job may do: report progress and the step it is on, and write its log.</summary>
public sealed class JobContext(long jobId, string kind, string target, string? arguments, JobEngine engine)
{
    public long JobId { get; } = jobId;
    public string Kind { get; } = kind;
    public string Target { get; } = target;
    public string? Arguments { get; } = arguments;

    public T ArgumentsAs<T>() => JobArguments.Parse<T>(Arguments);

    public Task LogAsync(string text, JobLogLevel level = JobLogLevel.Info) => engine.AppendLogAsync(JobId, text, level);

    /// <summary>A program's output, one log line per line, written together.</summary>
    public Task LogLinesAsync(string text, JobLogLevel level = JobLogLevel.Info) =>
        engine.AppendLogLinesAsync(JobId, text.Replace("\r\n", "\n").Split('\n').Where(l => l.Length > 0).Select(l => l.Length > 2000 ? l[..2000] + "..." : l).ToList(), level);

    public Task ProgressAsync(int percent, string step) => engine.SetProgressAsync(JobId, percent, step);

    /// <summary>
    /// A tool's percent (e.g. qemu-img convert -p, reported on its output thread) mapped onto this job's progress
    /// between <paramref name="from"/> and <paramref name="to"/>. Updates are chained so they land in order; await
    /// <see cref="ToolProgress.DrainAsync"/> once the tool has finished.
    /// </summary>
    public ToolProgress TrackTool(int from, int to, Func<double, string> step) => new(this, from, to, step);

    /// <summary>The engine, for a job that queues other jobs and waits for them (see <see cref="IJobKind.Orchestrates"/>).</summary>
    public JobEngine Jobs => engine;
}

public static class JobArguments
{
    private static readonly System.Text.Json.JsonSerializerOptions Json = new(System.Text.Json.JsonSerializerDefaults.Web)
    {
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    public static string Serialize<T>(T value) => System.Text.Json.JsonSerializer.Serialize(value, Json);

    public static T Parse<T>(string? json)
    {
        try
        {
            return (json is null ? default : System.Text.Json.JsonSerializer.Deserialize<T>(json, Json))
                ?? throw new Data.Qubes.QubeRuleException($"This job needs arguments of type {typeof(T).Name}.");
        }
        catch (System.Text.Json.JsonException e)
        {
            // Said as a refusal like any other, so the caller's message shows and nothing is queued; the parser's own
            // text names the path and position, never the input.
            throw new Data.Qubes.QubeRuleException($"This job's arguments are not a valid {typeof(T).Name}: {e.Message}");
        }
    }
}

/// <summary>See <see cref="JobContext.TrackTool"/>.</summary>
public sealed class ToolProgress(JobContext job, int from, int to, Func<double, string> step)
{
    private readonly object _gate = new();
    private Task _reported = Task.CompletedTask;
    private int _last = -1;

    public void Report(double percent)
    {
        var value = from + (int)(Math.Clamp(percent, 0, 100) * (to - from) / 100);
        lock (_gate)
        {
            if (value == _last) return;
            _last = value;
            var text = step(percent);
            _reported = _reported.ContinueWith(_ => job.ProgressAsync(value, text), TaskScheduler.Default).Unwrap();
        }
    }

    public Task DrainAsync()
    {
        lock (_gate) return _reported;
    }
}
