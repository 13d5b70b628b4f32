using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Jobs;

/// <summary>
/// Runs every operation that changes a qube as a job persisted in SQLite, so it goes on when the browser tab
/// closes and is accounted for when the process dies. A job holds its qube's lock from queueing to its end; a second
/// job on the same qube is refused with the holder named (as Proxmox's "VM is locked").
/// </summary>
public sealed class JobEngine : BackgroundService
{
    public const int Workers = 4;

    private readonly IDbContextFactory<InventoryDbContext> _contexts;
    private readonly Dictionary<string, IJobKind> _kinds;
    private readonly HashSet<long> _orchestrators = [];

    // Progress moves often (qemu-img reports every percent): it lives here and reaches the database at most once a
    // second and at the end, so a job is not slowed by a synced write per percent. Reads lay it over the stored row.
    private readonly ConcurrentDictionary<long, LiveProgress> _live = new();
    private static readonly TimeSpan ProgressPersistInterval = TimeSpan.FromSeconds(1);

    private sealed record LiveProgress(int Percent, string Step, DateTime PersistedUtc);

    private Job Live(Job job)
    {
        if (_live.TryGetValue(job.Id, out var p) && !job.IsFinished)
        {
            job.Progress = p.Percent;
            job.Step = p.Step;
        }
        return job;
    }

    private List<Job> Live(List<Job> jobs)
    {
        foreach (var j in jobs) Live(j);
        return jobs;
    }
    private readonly ILogger<JobEngine> _log;
    private readonly Channel<Job> _queue = Channel.CreateUnbounded<Job>();
    private readonly ConcurrentDictionary<long, CancellationTokenSource> _running = new();

    /// <summary>Held while a worker takes a queued job and while a cancel looks for one (see <see cref="CancelAsync"/>).</summary>
    private readonly SemaphoreSlim _takeGate = new(1, 1);
    private readonly ConcurrentDictionary<long, TaskCompletionSource> _finishWaiters = new();
    private readonly TaskCompletionSource _recovered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public JobEngine(IDbContextFactory<InventoryDbContext> contexts, IEnumerable<IJobKind> kinds, ILogger<JobEngine> log)
    {
        _contexts = contexts;
        _kinds = kinds.ToDictionary(k => k.Kind.Name, StringComparer.Ordinal);
        _log = log;
    }

    /// <summary>Raised with the job's id whenever a job's state, progress or log changes.</summary>
    public event Action<long>? JobChanged;

    public IReadOnlyCollection<string> Kinds => _kinds.Keys;

    public string Describe(Job job) => _kinds.TryGetValue(job.Kind, out var k) ? k.Describe(job.Target) : $"{job.Kind} {job.Target}";

    /// <summary>Queues a job of <paramref name="kind"/> on <paramref name="target"/>, taking the qube's lock.</summary>
    /// <exception cref="JobConflictException">another job holds the qube's lock.</exception>
    /// <exception cref="QubeRuleException">the job cannot succeed; the message says why.</exception>
    public Task<Job> EnqueueAsync(JobKind kind, string target, CancellationToken ct = default) => EnqueueAsync(kind, target, null, ct);

    /// <summary>Queues a job whose kind takes arguments (serialized as JSON into the job).</summary>
    public Task<Job> EnqueueAsync<TArguments>(JobKind kind, string target, TArguments arguments, CancellationToken ct) where TArguments : class =>
        EnqueueAsync(kind, target, JobArguments.Serialize(arguments), ct);

    public async Task<Job> EnqueueAsync(JobKind kind, string target, string? arguments, CancellationToken ct = default)
    {
        await _recovered.Task.WaitAsync(ct);
        await using var db = await _contexts.CreateDbContextAsync(ct);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var job = new Job { Kind = kind.Name, Target = target, Arguments = arguments, State = JobState.Queued, CreatedUtc = DateTime.UtcNow, Step = "Queued" };
        db.Jobs.Add(job);
        await db.SaveChangesAsync(ct);
        // The kind's checks run once this transaction holds SQLite's write lock (taken by the insert above), and the
        // lock row is added before it lets go: the checks and the lock are one step. Checked before the transaction,
        // a creation that ended in between (its qube made, its lock gone) would let a second tab's creation of the
        // same name be checked against the free name and then queued. The checks read on other connections, which
        // see every commit up to now and not this job, so no kind counts its own job.
        var handler = await ValidateAsync(kind, target, arguments, ct);
        var lockName = handler.LockName(target);
        db.Locks.Add(new QubeLock { QubeName = lockName, JobId = job.Id, AcquiredUtc = DateTime.UtcNow });
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException e) when (e.InnerException is SqliteException { SqliteErrorCode: 19 })
        {
            // Read the holder inside this transaction, before rolling back: it still holds SQLite's write lock, so the
            // holder's job cannot finish (and delete its lock) in between, and the refusal can always name it.
            var conflict = await ConflictAsync(db, lockName, ct);
            await tx.RollbackAsync(CancellationToken.None);
            _log.LogWarning("Refused {Kind} on {Target}: {Reason}", kind, target, conflict.Message);
            throw conflict;
        }
        await tx.CommitAsync(ct);
        if (handler.Orchestrates) lock (_orchestrators) _orchestrators.Add(job.Id);
        _queue.Writer.TryWrite(job);
        JobChanged?.Invoke(job.Id);
        return job;
    }

    /// <summary>
    /// Runs a job kind's own checks for <paramref name="target"/> without queuing anything, so a page can say a
    /// refusal before the user confirms (e.g. why a qube cannot be removed).
    /// </summary>
    public async Task<IJobKind> ValidateAsync(JobKind kind, string target, string? arguments, CancellationToken ct = default)
    {
        if (!_kinds.TryGetValue(kind.Name, out var handler))
            throw new QubeRuleException($"There is no job kind '{QubeRules.Shown(kind.Name)}'.");
        try
        {
            // Every job acts on a qube (or dom0) by its name: a target no qube could have is refused here, before any
            // kind looks it up in the inventory, the pool or libvirt (whose C API would read "vault\0x" as "vault").
            QubeRules.ValidateName(target);
            await handler.ValidateAsync(target, arguments, ct);
        }
        catch (RefusalException e)
        {
            // The refusal is the user's to read in the UI; the log keeps it for whoever reads it later.
            _log.LogWarning("Refused {Kind} on {Target}: {Reason}", kind, QubeRules.Shown(target), e.Message);
            throw;
        }
        return handler;
    }

    private async Task<JobConflictException> ConflictAsync(InventoryDbContext db, string target, CancellationToken ct)
    {
        var holder = await (from l in db.Locks
                            join j in db.Jobs on l.JobId equals j.Id
                            where l.QubeName == target
                            select j).AsNoTracking().FirstOrDefaultAsync(ct);
        return holder is null
            ? new JobConflictException($"'{target}' is busy with another job; try again when it has finished.", 0)
            : new JobConflictException($"'{target}' is busy: job #{holder.Id} ({Describe(holder)}) holds its lock; wait for it to finish or cancel it.", holder.Id);
    }

    /// <summary>Whether a queued or running job holds the lock named <paramref name="lockName"/> (usually a qube's name).</summary>
    public async Task<bool> IsLockedAsync(string lockName, CancellationToken ct = default)
    {
        await using var db = await _contexts.CreateDbContextAsync(ct);
        return await db.Locks.AnyAsync(l => l.QubeName == lockName, ct);
    }

    /// <summary>Cancels a queued or running job. A finished job is left as it is.</summary>
    public async Task<bool> CancelAsync(long jobId, CancellationToken ct = default)
    {
        // Under the gate a worker takes jobs with: a job is either still queued in the database or running with its
        // token registered, never between the two, so a cancel is never lost to a job being taken at that moment.
        await _takeGate.WaitAsync(ct);
        try
        {
            return await CancelTakenOrQueuedAsync(jobId, ct);
        }
        finally
        {
            _takeGate.Release();
        }
    }

    private async Task<bool> CancelTakenOrQueuedAsync(long jobId, CancellationToken ct)
    {
        if (_running.TryGetValue(jobId, out var cts))
        {
            // Logged first, so the log reads "Cancel requested." before the job's own "Cancelled.".
            await AppendLogAsync(jobId, "Cancel requested.", JobLogLevel.Warning);
            try
            {
                await cts.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // The job finished between the lookup and the cancel: there was nothing left to cancel.
                return false;
            }
            return true;
        }
        await using var db = await _contexts.CreateDbContextAsync(ct);
        var n = await db.Jobs.Where(j => j.Id == jobId && j.State == JobState.Queued)
            .ExecuteUpdateAsync(s => s.SetProperty(j => j.State, JobState.Cancelled)
                .SetProperty(j => j.Step, "Cancelled before it started")
                .SetProperty(j => j.FinishedUtc, DateTime.UtcNow), ct);
        if (n == 0) return false;
        await db.Locks.Where(l => l.JobId == jobId).ExecuteDeleteAsync(ct);
        SignalFinished(jobId);
        JobChanged?.Invoke(jobId);
        return true;
    }

    public async Task<Job?> GetAsync(long jobId, CancellationToken ct = default)
    {
        await using var db = await _contexts.CreateDbContextAsync(ct);
        return await db.Jobs.AsNoTracking().Include(j => j.Log.OrderBy(l => l.Id)).FirstOrDefaultAsync(j => j.Id == jobId, ct) is { } job ? Live(job) : null;
    }

    public async Task<List<Job>> RecentAsync(int count, CancellationToken ct = default)
    {
        await using var db = await _contexts.CreateDbContextAsync(ct);
        return Live(await db.Jobs.AsNoTracking().OrderByDescending(j => j.Id).Take(count).ToListAsync(ct));
    }

    /// <summary>The job without its log: what a page re-reads on each push, the log being fetched by <see cref="LogSinceAsync"/>.</summary>
    public async Task<Job?> FindAsync(long jobId, CancellationToken ct = default)
    {
        await using var db = await _contexts.CreateDbContextAsync(ct);
        return await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == jobId, ct) is { } job ? Live(job) : null;
    }

    /// <summary>The jobs that match <paramref name="query"/>, newest first, without their logs.</summary>
    public async Task<List<Job>> QueryAsync(JobQuery query, CancellationToken ct = default)
    {
        await using var db = await _contexts.CreateDbContextAsync(ct);
        IQueryable<Job> jobs = db.Jobs.AsNoTracking();
        if (query.States is { Count: > 0 } states)
        {
            var wanted = states.Distinct().ToList();
            jobs = jobs.Where(j => wanted.Contains(j.State));
        }
        if (!string.IsNullOrEmpty(query.Target))
            jobs = jobs.Where(j => j.Target == query.Target);
        if (!string.IsNullOrWhiteSpace(query.TargetContains))
        {
            // instr() on lower(): case-insensitive without LIKE, whose '_' and '%' would need escaping in qube names.
            var part = query.TargetContains.Trim().ToLowerInvariant();
            jobs = jobs.Where(j => j.Target.ToLower().Contains(part));
        }
        return Live(await jobs.OrderByDescending(j => j.Id).Take(Math.Clamp(query.Take, 1, JobQuery.MaxTake)).ToListAsync(ct));
    }

    /// <summary>
    /// The job's log lines written after line <paramref name="afterLineId"/> (0 for all), oldest first, so a page
    /// appends what is new instead of reading the whole log on every push. Line ids only grow within a job: SQLite
    /// serializes writers and each line is committed on its own.
    /// </summary>
    public async Task<List<JobLogLine>> LogSinceAsync(long jobId, long afterLineId, CancellationToken ct = default)
    {
        await using var db = await _contexts.CreateDbContextAsync(ct);
        return await db.JobLog.AsNoTracking().Where(l => l.JobId == jobId && l.Id > afterLineId).OrderBy(l => l.Id).ToListAsync(ct);
    }

    /// <summary>
    /// Waits until the job has finished. It is woken by the job's end only, not by each log line or progress step: a
    /// caller waiting on a busy job would otherwise read the job and its whole log again at every change.
    /// </summary>
    public async Task<Job> WaitAsync(long jobId, CancellationToken ct)
    {
        var finished = _finishWaiters.GetOrAdd(jobId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        var job = await GetAsync(jobId, ct);
        if (job is null || job.IsFinished)
        {
            // Nothing to wait for: the entry goes, and whoever shares it reads the job again.
            finished.TrySetResult();
            _finishWaiters.TryRemove(new KeyValuePair<long, TaskCompletionSource>(jobId, finished));
            return job ?? throw new InvalidOperationException($"There is no job #{jobId}.");
        }
        await finished.Task.WaitAsync(ct);
        return await GetAsync(jobId, ct) ?? throw new InvalidOperationException($"There is no job #{jobId}.");
    }

    private void SignalFinished(long id)
    {
        if (_finishWaiters.TryRemove(id, out var finished)) finished.TrySetResult();
    }

    public override async Task StartAsync(CancellationToken ct)
    {
        await RecoverAsync(ct);
        await base.StartAsync(ct);
    }

    /// <summary>
    /// Jobs found queued or running were cut off when the process died: each is marked interrupted, its kind's
    /// recovery step runs, and only then its lock is released, so no new job can act on a half-done qube.
    /// </summary>
    private async Task RecoverAsync(CancellationToken ct)
    {
        List<Job> orphans;
        await using (var db = await _contexts.CreateDbContextAsync(ct))
            orphans = await db.Jobs.Where(j => j.State == JobState.Running || j.State == JobState.Queued).ToListAsync(ct);
        foreach (var job in orphans)
        {
            var wasRunning = job.State == JobState.Running;
            await AppendLogAsync(job.Id, wasRunning
                ? "The console stopped while this job ran; it was interrupted. Running its recovery step."
                : "The console stopped before this job started; it was not run.", JobLogLevel.Warning);
            string? error = null;
            if (wasRunning && _kinds.TryGetValue(job.Kind, out var kind))
            {
                try
                {
                    await kind.RecoverAsync(new JobContext(job.Id, job.Kind, job.Target, job.Arguments, this), ct);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    error = e.Message;
                    await AppendLogAsync(job.Id, "Recovery failed: " + e.Message, JobLogLevel.Error);
                }
            }
            await FinishAsync(job.Id, JobState.Interrupted, error ?? "Interrupted: the console stopped while this job was pending or running.", null);
        }
        await using (var db = await _contexts.CreateDbContextAsync(ct))
        {
            // Locks whose job is over (or gone) hold nothing.
            await db.Locks.Where(l => !db.Jobs.Any(j => j.Id == l.JobId && (j.State == JobState.Queued || j.State == JobState.Running)))
                .ExecuteDeleteAsync(ct);
        }
        if (orphans.Count > 0) _log.LogWarning("Marked {Count} job(s) interrupted at start-up", orphans.Count);
        _recovered.TrySetResult();
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => WorkAsync(stoppingToken)));

    private async Task WorkAsync(CancellationToken stopping)
    {
        try
        {
            await foreach (var queued in _queue.Reader.ReadAllAsync(stopping))
            {
                var id = queued.Id;
                bool orchestrates;
                lock (_orchestrators) orchestrates = _orchestrators.Remove(id);
                if (orchestrates) _ = Task.Run(() => RunOneAsync(queued, stopping), CancellationToken.None);
                else await RunOneAsync(queued, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    private async Task RunOneAsync(Job job, CancellationToken stopping)
    {
        var id = job.Id;
        // Kind, target and arguments never change after the enqueue, so the queued job is not read again.
        // Shutting the console down does not cancel a job: it stays "running" and start-up recovery accounts for it.
        using var cts = new CancellationTokenSource();
        await _takeGate.WaitAsync(CancellationToken.None);
        try
        {
            await using var db = await _contexts.CreateDbContextAsync(CancellationToken.None);
            var taken = await db.Jobs.Where(j => j.Id == id && j.State == JobState.Queued).ExecuteUpdateAsync(s => s
                .SetProperty(j => j.State, JobState.Running)
                .SetProperty(j => j.StartedUtc, DateTime.UtcNow)
                .SetProperty(j => j.Step, "Starting"), CancellationToken.None);
            if (taken == 0) return; // cancelled while queued
            _running[id] = cts;
        }
        finally
        {
            _takeGate.Release();
        }
        JobChanged?.Invoke(id);
        var ctx = new JobContext(id, job.Kind, job.Target, job.Arguments, this);
        FaultPoints.EnterJob(job.Kind);
        try
        {
            // A cancel that came between the take and here is honoured before the job does anything.
            cts.Token.ThrowIfCancellationRequested();
            await _kinds[job.Kind].RunAsync(ctx, cts.Token);
            FaultPoints.Hit("done");
            await FinishAsync(id, JobState.Succeeded, null, "Done");
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            await AppendLogAsync(id, "Cancelled.", JobLogLevel.Warning);
            await FinishAsync(id, JobState.Cancelled, null, "Cancelled");
        }
        catch (Exception e)
        {
            // A refusal or a tool's failure is the job's outcome, said in its log; anything else is a fault worth a stack.
            var known = e is RefusalException or TimeoutException or Hypervisor.Storage.ProcessFailedException;
            if (!known) _log.LogError(e, "Job #{Id} ({Kind} {Target}) failed", id, job.Kind, job.Target);
            else _log.LogWarning("Job #{Id} ({Kind} {Target}) failed: {Error}", id, job.Kind, job.Target, e.Message);
            await AppendLogAsync(id, e.Message, JobLogLevel.Error);
            await FinishAsync(id, JobState.Failed, e.Message, "Failed");
        }
        finally
        {
            _running.TryRemove(id, out _);
        }
    }

    private async Task FinishAsync(long id, JobState state, string? error, string? step)
    {
        _live.TryRemove(id, out var live);
        step ??= live?.Step;
        await using var db = await _contexts.CreateDbContextAsync(CancellationToken.None);
        await using var tx = await db.Database.BeginTransactionAsync(CancellationToken.None);
        await db.Jobs.Where(j => j.Id == id).ExecuteUpdateAsync(s => s
            .SetProperty(j => j.State, state)
            .SetProperty(j => j.Error, error)
            .SetProperty(j => j.Progress, j => state == JobState.Succeeded ? 100 : live != null ? live.Percent : j.Progress)
            .SetProperty(j => j.Step, j => step ?? j.Step)
            .SetProperty(j => j.FinishedUtc, DateTime.UtcNow));
        await db.Locks.Where(l => l.JobId == id).ExecuteDeleteAsync();
        await tx.CommitAsync();
        SignalFinished(id);
        JobChanged?.Invoke(id);
    }

    /// <summary>Many lines at once (a program's output), in one transaction.</summary>
    internal Task AppendLogLinesAsync(long id, IEnumerable<string> lines, JobLogLevel level)
    {
        var now = DateTime.UtcNow;
        return AppendAsync(id, lines.Select(text => new JobLogLine { JobId = id, Text = text, Level = level, TimeUtc = now }));
    }

    internal Task AppendLogAsync(long id, string text, JobLogLevel level) =>
        AppendAsync(id, [new JobLogLine { JobId = id, Text = text, Level = level, TimeUtc = DateTime.UtcNow }]);

    /// <summary>
    /// A log line is committed without waiting for the disk (SQLite's synchronous=NORMAL, for this transaction only): in
    /// WAL mode it survives the console's crash all the same, and the next state change (a job's end, an inventory row),
    /// committed with synchronous=FULL, makes it durable with it. Only a power cut can lose the lines written since, never
    /// a state. A job writes several lines per step: each fsync was a few ms of a short job (a clone, a start).
    /// </summary>
    private async Task AppendAsync(long id, IEnumerable<JobLogLine> lines)
    {
        await using var db = await _contexts.CreateDbContextAsync(CancellationToken.None);
        await db.Database.OpenConnectionAsync(CancellationToken.None);
        try
        {
            await db.Database.ExecuteSqlRawAsync("PRAGMA synchronous=NORMAL", CancellationToken.None);
            db.JobLog.AddRange(lines);
            await db.SaveChangesAsync(CancellationToken.None);
        }
        finally
        {
            // The pooled connection goes back as every other: committing in full.
            await db.Database.ExecuteSqlRawAsync("PRAGMA synchronous=FULL", CancellationToken.None);
            await db.Database.CloseConnectionAsync();
        }
        JobChanged?.Invoke(id);
    }

    internal async Task SetProgressAsync(long id, int percent, string step)
    {
        var now = DateTime.UtcNow;
        var previous = _live.TryGetValue(id, out var p) ? p : null;
        // The first update is only kept here too: a job over within the second never writes its progress but once, at the end.
        var persist = previous is not null && now - previous.PersistedUtc >= ProgressPersistInterval;
        _live[id] = new LiveProgress(Math.Clamp(percent, 0, 100), step, persist || previous is null ? now : previous.PersistedUtc);
        if (persist)
        {
            await using var db = await _contexts.CreateDbContextAsync(CancellationToken.None);
            await db.Jobs.Where(j => j.Id == id).ExecuteUpdateAsync(s => s
                .SetProperty(j => j.Progress, Math.Clamp(percent, 0, 100))
                .SetProperty(j => j.Step, step));
        }
        JobChanged?.Invoke(id);
    }
}

/// <summary>Which jobs to list (the tasks page's filters). Empty filters match every job.</summary>
public sealed record JobQuery
{
    public const int MaxTake = 1000;

    /// <summary>Only jobs in one of these states; null or empty for any state.</summary>
    public IReadOnlyCollection<JobState>? States { get; init; }

    /// <summary>Only jobs on exactly this qube.</summary>
    public string? Target { get; init; }

    /// <summary>Only jobs whose qube name contains this text, ignoring case.</summary>
    public string? TargetContains { get; init; }

    /// <summary>At most this many jobs, the newest (1 to <see cref="MaxTake"/>).</summary>
    public int Take { get; init; } = 200;
}
