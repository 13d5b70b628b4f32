// A job run as a page runs one: queued on the console's own job engine, then waited for until it ends. RunAsync
// returns the finished job whatever its end; SucceedsAsync fails the test (or the benchmark) unless it succeeded,
// with the job's error and the end of its log in the message.
using Microsoft.Extensions.DependencyInjection;
using QubesWeb.Data.Jobs;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Tests.Shared;

public static class JobRuns
{
    /// <summary>How long a job may take before the wait gives up: generous, the machine has 2 cores shared by parallel tests.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(120);

    /// <summary>How many of the log's last lines a failure message quotes.</summary>
    private const int LogLinesShown = 20;

    /// <summary>Queues the job (with its <paramref name="arguments"/> as JSON, if any) and returns it once it has ended.</summary>
    public static Task<Job> RunAsync(ConsoleHost host, JobKind kind, string target, object? arguments = null, TimeSpan? timeout = null) =>
        RunAsync(host.Services, kind, target, arguments, timeout);

    /// <inheritdoc cref="RunAsync(ConsoleHost, JobKind, string, object?, TimeSpan?)"/>
    public static async Task<Job> RunAsync(IServiceProvider services, JobKind kind, string target, object? arguments = null, TimeSpan? timeout = null)
    {
        var jobs = services.GetRequiredService<JobEngine>();
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        var queued = arguments switch
        {
            null => await jobs.EnqueueAsync(kind, target, cts.Token),
            string => throw new ArgumentException("Pass the arguments' object; the job engine takes JSON as it comes.", nameof(arguments)),
            _ => await jobs.EnqueueAsync(kind, target, JobArguments.Serialize(arguments), cts.Token),
        };
        return await jobs.WaitAsync(queued.Id, cts.Token);
    }

    /// <summary>A job queued already (by a page, a test, another job), once it has ended.</summary>
    public static Task<Job> FinishedAsync(ConsoleHost host, long jobId, TimeSpan? timeout = null) => FinishedAsync(host.Services, jobId, timeout);

    /// <inheritdoc cref="FinishedAsync(ConsoleHost, long, TimeSpan?)"/>
    public static async Task<Job> FinishedAsync(IServiceProvider services, long jobId, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        return await services.GetRequiredService<JobEngine>().WaitAsync(jobId, cts.Token);
    }

    /// <summary>
    /// The newest job of <paramref name="kind"/> on <paramref name="target"/> that another job queued (a clone's detach),
    /// once it has ended; fails if there is none.
    /// </summary>
    public static async Task<Job> QueuedByAnotherAsync(ConsoleHost host, JobKind kind, string target, TimeSpan? timeout = null)
    {
        var jobs = await host.Services.GetRequiredService<JobEngine>().QueryAsync(new JobQuery { Target = target });
        var job = jobs.Where(j => kind.Is(j)).MaxBy(j => j.Id) ?? throw new JobDidNotSucceedException($"No {kind} job on {target} was queued.");
        return await FinishedAsync(host, job.Id, timeout);
    }

    /// <summary>Runs the job and fails unless it succeeded; returns the finished job.</summary>
    public static Task<Job> SucceedsAsync(ConsoleHost host, JobKind kind, string target, object? arguments = null, TimeSpan? timeout = null) =>
        SucceedsAsync(host.Services, kind, target, arguments, timeout);

    /// <inheritdoc cref="SucceedsAsync(ConsoleHost, JobKind, string, object?, TimeSpan?)"/>
    public static async Task<Job> SucceedsAsync(IServiceProvider services, JobKind kind, string target, object? arguments = null, TimeSpan? timeout = null) =>
        Succeeded(await RunAsync(services, kind, target, arguments, timeout));

    /// <summary>The job itself if it succeeded; otherwise a failure that says how it ended, its error and its log's end.</summary>
    public static Job Succeeded(Job job) =>
        job.State == JobState.Succeeded ? job : throw new JobDidNotSucceedException(Describe(job));

    /// <summary>"#12 start vault: Failed: error", then the log's last lines.</summary>
    public static string Describe(Job job)
    {
        var text = $"#{job.Id} {job.Kind} {job.Target}: {job.State}" + (job.Error is null ? "" : $": {job.Error}");
        var log = job.Log.TakeLast(LogLinesShown).Select(l => $"\n  {l.Level}: {l.Text}");
        return job.Log.Count == 0 ? text : text + $"\nIts log (last {Math.Min(job.Log.Count, LogLinesShown)} of {job.Log.Count} lines):" + string.Concat(log);
    }
}

/// <summary>A job that a test or benchmark needed to succeed ended otherwise.</summary>
public sealed class JobDidNotSucceedException(string message) : Exception(message);
