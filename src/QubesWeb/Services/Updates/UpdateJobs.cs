using QubesWeb.Services.Qubes;
using System.Globalization;
using Microsoft.Extensions.Options;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Storage;

namespace QubesWeb.Services.Updates;

public sealed class UpdateOptions
{
    /// <summary>How many updates run at once (Qubes' updater: --max-concurrency).</summary>
    public int Concurrency { get; set; } = 2;

    /// <summary>How long one package manager run may take.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(60);

    /// <summary>A qube not checked for this long shows MAYBE (Qubes: 7 days).</summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromDays(7);

    public TimeSpan AgentTimeout { get; set; } = TimeSpan.FromMinutes(3);

    /// <summary>Bytes of one program's output logged at most ("Updates:MaxOutputBytesPerRun"); the log says where it was cut.</summary>
    public long MaxOutputBytesPerRun { get; set; } = GuestOutputLimits.Default.MaxBytesPerRun;

    /// <summary>Bytes of program output one task's log keeps at most, over all its programs.</summary>
    public long MaxOutputBytesPerJob { get; set; } = GuestOutputLimits.Default.MaxBytesPerJob;

    /// <summary>Characters of one output line logged at most; a longer line is cut with a note.</summary>
    public int MaxOutputLineLength { get; set; } = GuestOutputLimits.Default.MaxLineLength;

    public GuestOutputLimits OutputLimits => new(Math.Max(0, MaxOutputBytesPerRun), Math.Max(0, MaxOutputBytesPerJob), Math.Max(1, MaxOutputLineLength));
}

/// <summary>What the update jobs share: starting a qube for the job, shutting it down, the features they set.</summary>
public sealed class UpdateRunner(Inventory inventory, IHypervisor hypervisor, EstateMonitor estate, RootLifecycle roots, Guests guests,
    IServiceProvider services, IOptions<UpdateOptions> options, IOptions<LifecycleOptions> lifecycle, TemplateUpdateNetwork updatesProxy)
{
    private readonly SemaphoreSlim _slots = new(Math.Max(1, options.Value.Concurrency));

    public UpdateOptions Options => options.Value;

    public async Task<IDisposable> TakeSlotAsync(JobContext job, CancellationToken ct)
    {
        if (_slots.CurrentCount == 0) await job.ProgressAsync(1, $"Waiting for a free update slot ({options.Value.Concurrency} run at once)");
        await _slots.WaitAsync(ct);
        return new Slot(_slots);
    }

    private sealed class Slot(SemaphoreSlim slots) : IDisposable
    {
        private int _done;
        public void Dispose() { if (Interlocked.Exchange(ref _done, 1) == 0) slots.Release(); }
    }

    public async Task ValidateAsync(string target, CancellationToken ct)
    {
        var qube = await inventory.GetAsync(target, ct);
        if (!qube.Updateable)
            throw new QubeRuleException($"'{target}' is {QubeRules.Article(qube.Class)}: it gets its software from its template; update the template instead.");
        if (!hypervisor.Connection.IsUp)
            throw new HypervisorUnavailableException($"libvirt is not reachable ({hypervisor.Connection.Error}); updates wait until it is back.");
        UpdateCommands.Update(qube);
    }

    /// <summary>Starts the qube through the start job's steps (volumes, netvm chain) unless it runs; true when it was started here.</summary>
    public async Task<bool> EnsureRunningAsync(JobContext job, CancellationToken ct)
    {
        if (estate.StateOf(job.Target) is RunState.Running) return false;
        await job.LogAsync($"Starting {job.Target} for the job.");
        var start = services.GetServices<IJobKind>().OfType<LifecycleJob>().First(k => k.Kind == JobKind.Start);
        await start.RunAsync(job, ct);
        return true;
    }

    /// <summary>A template's way to its updates proxy, opened for this job; what its package manager's environment needs (null: none).</summary>
    public Task<IReadOnlyList<string>?> OpenUpdatesProxyAsync(JobContext job, IGuest guest, GuestOutputLog output, CancellationToken ct) =>
        updatesProxy.OpenAsync(job, guest, output, ct);

    public async Task<IGuest> ReadyGuestAsync(JobContext job, CancellationToken ct)
    {
        var guest = guests.For(await inventory.GetAsync(job.Target, ct));
        await job.ProgressAsync(20, "Waiting for its agent");
        await job.LogAsync($"Talking to {guest.Description}.");
        await guest.WaitReadyAsync(options.Value.AgentTimeout, ct);
        return guest;
    }

    /// <summary>Shuts the qube down (killed after the shutdown timeout); with <paramref name="commitReason"/> its writes become a revision, else they are dropped.</summary>
    public async Task<SettleOutcome?> StopAsync(JobContext job, string? commitReason, CancellationToken ct)
    {
        if (estate.StateOf(job.Target) is not RunState.Halted)
        {
            if (commitReason is not null)
            {
                hypervisor.Shutdown(job.Target);
                try
                {
                    await estate.WaitForStateAsync(job.Target, s => s == RunState.Halted, lifecycle.Value.ShutdownTimeout, ct);
                }
                catch (TimeoutException)
                {
                    await job.LogAsync($"{job.Target} did not shut down within {lifecycle.Value.ShutdownTimeout.TotalSeconds:0} s; killing it.", JobLogLevel.Warning);
                    hypervisor.Kill(job.Target);
                }
            }
            else hypervisor.Kill(job.Target);
            await estate.WaitForStateAsync(job.Target, s => s == RunState.Halted, lifecycle.Value.ShutdownTimeout, CancellationToken.None);
            // Halted with its writes neither committed nor dropped yet: start-up recovery must decide for them.
            FaultPoints.Hit("stopped");
        }
        if (commitReason is null)
        {
            await roots.DiscardDirtyAsync(job.Target, CancellationToken.None);
            return null;
        }
        return await roots.SettleStoppedAsync(job.Target, commitReason, DateTime.UtcNow, text => job.LogAsync(text), CancellationToken.None);
    }

    public Task SetFeaturesAsync(string name, IReadOnlyDictionary<string, string?> features) =>
        inventory.UpdateAsync(name, new QubeChanges(Features: features), CancellationToken.None);

    /// <summary>The job's bounded sink for program output (one per job: the per-job limit spans its programs).</summary>
    public GuestOutputLog OutputLog(JobContext job) => new(options.Value.OutputLimits, lines => job.LogLinesAsync(string.Join('\n', lines)));

    /// <summary>
    /// The job's step while a program runs, with how long it has run: the agent hands output over only at the end, so
    /// this is what shows a flooding or hanging program is still being waited for (and can be cancelled).
    /// </summary>
    public static Func<TimeSpan, Task> Running(JobContext job, int percent, string line) =>
        elapsed => job.ProgressAsync(percent, $"Running {line} ({(int)elapsed.TotalMinutes}:{elapsed.Seconds:00})");

    public static string Now() => DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
}

/// <summary>
/// Updates a template or standalone (Qubes' qubes-vm-update): start it if halted, wait for its agent, run its
/// package manager with the output streamed into the log, decide by the exit code, shut it down so its root is
/// committed as a new revision, then say which running qubes became outdated. A failure or a cancel stops the
/// command and drops the uncommitted changes: the root stays on its last good revision.
/// </summary>
public sealed class UpdateJob(UpdateRunner runner, Inventory inventory, RootRevisions roots, Guests guests) : IJobKind
{
    public JobKind Kind => JobKind.Update;
    public string Describe(string target) => $"Update {target}";

    public Task ValidateAsync(string target, string? arguments, CancellationToken ct) => runner.ValidateAsync(target, ct);

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        using var slot = await runner.TakeSlotAsync(job, ct);
        var before = (await roots.HistoryAsync(job.Target, ct))?.Current;
        if (guests.Simulated)
            await job.LogAsync("Demo mode: the package manager inside the qube is simulated (libvirt's test driver runs no guest); the new revision it makes is real.", JobLogLevel.Warning);
        var committed = false;
        try
        {
            await runner.EnsureRunningAsync(job, ct);
            var guest = await runner.ReadyGuestAsync(job, ct);
            var commands = UpdateCommands.Update(await inventory.GetAsync(job.Target, ct));
            var output = runner.OutputLog(job);
            var env = await runner.OpenUpdatesProxyAsync(job, guest, output, ct);
            foreach (var (path, args, i) in commands.Select((c, i) => (c.Path, c.Args, i)))
            {
                var line = $"{path} {string.Join(' ', args)}";
                var percent = 30 + 50 * i / commands.Count;
                await job.ProgressAsync(percent, $"Running {line}");
                var run = await guest.RunAsync(path, args, runner.Options.CommandTimeout, output, ct, UpdateRunner.Running(job, percent, line), env);
                if (run.ExitCode != 0)
                    throw new QubeRuleException($"{line} exited with code {run.ExitCode} in {job.Target}; the update's changes were dropped and it stays on revision {before}.");
            }
            FaultPoints.Hit("commands-ran");
            await job.ProgressAsync(85, "Shutting down to commit");
            var outcome = await runner.StopAsync(job, $"Update ({string.Join("; ", commands.Select(c => Path.GetFileName(c.Path) + " " + string.Join(' ', c.Args)))})", CancellationToken.None);
            committed = true;
            var now = UpdateRunner.Now();
            await runner.SetFeaturesAsync(job.Target, new Dictionary<string, string?> { ["updates-available"] = "False", ["last-updates-check"] = now, ["last-update"] = now });
            var history = await roots.HistoryAsync(job.Target, CancellationToken.None);
            var outdated = history!.Revisions.Where(r => r.Number != history.Current).SelectMany(r => r.UsedBy).Order(StringComparer.Ordinal).ToList();
            await job.LogAsync(outcome?.CommittedRevision is { } n
                ? $"{job.Target} is on revision {n} now (was {before})."
                : $"Nothing changed on the root; {job.Target} stays on revision {before}.");
            await job.LogAsync(outdated.Count > 0
                ? $"Outdated until they restart: {string.Join(", ", outdated)}. Use \"Restart outdated\" (service qubes first)."
                : "No running qube is outdated by it.");
        }
        catch (Exception) when (!committed)
        {
            await job.LogAsync($"Stopping {job.Target} and dropping the update's changes.", JobLogLevel.Warning);
            await runner.StopAsync(job, null, CancellationToken.None);
            await job.LogAsync($"{job.Target} stays on revision {before}.");
            throw;
        }
    }

    public Task RecoverAsync(JobContext job, CancellationToken ct) =>
        job.LogAsync("The console stopped during the update: whatever the qube wrote was committed or dropped by start-up recovery; run the update again to be sure it is complete.");
}

/// <summary>
/// Asks a template or standalone whether updates are waiting (Qubes' updates-available feature and
/// last-updates-check); a qube started for the check is shut down after it and what the check wrote is dropped.
/// </summary>
public sealed class CheckUpdatesJob(UpdateRunner runner, Inventory inventory, Guests guests) : IJobKind
{
    public JobKind Kind => JobKind.CheckUpdates;
    public string Describe(string target) => $"Check {target} for updates";

    public Task ValidateAsync(string target, string? arguments, CancellationToken ct) => runner.ValidateAsync(target, ct);

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        using var slot = await runner.TakeSlotAsync(job, ct);
        if (guests.Simulated)
            await job.LogAsync("Demo mode: the package manager inside the qube is simulated.", JobLogLevel.Warning);
        var started = false;
        try
        {
            started = await runner.EnsureRunningAsync(job, ct);
            var guest = await runner.ReadyGuestAsync(job, ct);
            var (path, args, available) = UpdateCommands.Check(await inventory.GetAsync(job.Target, ct));
            var output = runner.OutputLog(job);
            var env = await runner.OpenUpdatesProxyAsync(job, guest, output, ct);
            var line = $"{path} {string.Join(' ', args)}";
            await job.ProgressAsync(50, $"Running {line}");
            var run = await guest.RunAsync(path, args, runner.Options.CommandTimeout, output, ct, UpdateRunner.Running(job, 50, line), env);
            var yes = available(run);
            if (!yes && run.ExitCode != 0)
                throw new QubeRuleException($"{path} exited with code {run.ExitCode}; whether updates wait is not known.");
            FaultPoints.Hit("checked");
            await runner.SetFeaturesAsync(job.Target, new Dictionary<string, string?> { ["updates-available"] = yes ? "True" : "False", ["last-updates-check"] = UpdateRunner.Now() });
            await job.LogAsync(yes ? $"Updates are available for {job.Target}." : $"{job.Target} is up to date.");
        }
        finally
        {
            // A qube started only for the check goes back to halted, leaving its root as it was.
            if (started) await runner.StopAsync(job, null, CancellationToken.None);
        }
    }

    public Task RecoverAsync(JobContext job, CancellationToken ct) => job.LogAsync("Check again to know whether updates wait.");
}
