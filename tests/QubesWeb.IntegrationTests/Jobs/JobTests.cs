// Jobs run by the real console on a private test-driver node: locks, refusals, cancel and start-up recovery.
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.JobTests;

public sealed class JobTests
{
    /// <summary>A console on its own node with fedora-42, sys-net (a netvm), work and vault, all defined and halted.</summary>
    private static async Task<ConsoleHost> StartAsync(TestNode node, string? dataDir = null)
    {
        var host = await ConsoleHost.StartAsync(libvirtUri: node.Uri, demo: false, dataDir: dataDir);
        var inventory = host.Get<InventoryService>();
        if (await inventory.FindAsync("fedora-42") is null)
        {
            await inventory.CreateAsync(new NewQube("fedora-42", QubeClass.TemplateVM, "black"));
            await inventory.CreateAsync(new NewQube("sys-net", QubeClass.AppVM, "red", "fedora-42", ProvidesNetwork: true));
            await inventory.CreateAsync(new NewQube("work", QubeClass.AppVM, "blue", "fedora-42", "sys-net"));
            await inventory.CreateAsync(new NewQube("vault", QubeClass.AppVM, "black", "fedora-42"));
        }
        await host.Get<EstateMonitor>().ReconcileAsync();
        return host;
    }

    private static async Task<long> InsertHeldJobAsync(IDbContextFactory<InventoryDbContext> contexts, string target, JobState state, string kind = "shutdown")
    {
        await using var db = await contexts.CreateDbContextAsync();
        var job = new Job { Kind = kind, Target = target, State = state, CreatedUtc = DateTime.UtcNow, StartedUtc = state == JobState.Running ? DateTime.UtcNow : null, Step = state.ToString() };
        db.Jobs.Add(job);
        await db.SaveChangesAsync();
        db.Locks.Add(new QubeLock { QubeName = target, JobId = job.Id, AcquiredUtc = DateTime.UtcNow });
        await db.SaveChangesAsync();
        return job.Id;
    }

    private static async Task<bool> LockedAsync(IDbContextFactory<InventoryDbContext> contexts, string target)
    {
        await using var db = await contexts.CreateDbContextAsync();
        return await db.Locks.AnyAsync(l => l.QubeName == target);
    }

    [Fact]
    public async Task A_start_job_on_a_halted_qube_succeeds_and_the_qube_runs()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);

        var job = await RunAsync(host, JobKind.Start, "vault");

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(100, job.Progress);
        Assert.Null(job.Error);
        Assert.NotEmpty(job.Log);
        Assert.Contains(job.Log, l => l.Text == "vault is running.");
        Assert.NotNull(job.FinishedUtc);
        Assert.Equal(RunState.Running, host.Get<EstateMonitor>().StateOf("vault"));
        Assert.Equal(RunState.Running, host.Get<IHypervisor>().GetDomain("vault")!.State);
        Assert.False(await LockedAsync(host.Get<IDbContextFactory<InventoryDbContext>>(), "vault"));
    }

    [Fact]
    public async Task Starting_a_qube_starts_its_netvm_first()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);

        var job = await RunAsync(host, JobKind.Start, "work");

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Contains(job.Log, l => l.Text.Contains("Starting sys-net"));
        Assert.Equal(RunState.Running, host.Get<EstateMonitor>().StateOf("sys-net"));
        Assert.Equal(RunState.Running, host.Get<EstateMonitor>().StateOf("work"));
    }

    [Fact]
    public async Task Starting_a_running_qube_is_refused_as_already_running_and_queues_nothing()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);
        host.Get<IHypervisor>().Start("vault");

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Start, "vault"));

        Assert.Equal("'vault' is already running.", error.Message);
        Assert.Empty(await host.Get<JobEngine>().RecentAsync(10));
    }

    [Fact]
    public async Task Jobs_on_dom0_on_an_unknown_qube_or_of_an_unknown_kind_are_refused_clearly()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);
        var jobs = host.Get<JobEngine>();

        var dom0 = await Assert.ThrowsAsync<QubeRuleException>(() => jobs.EnqueueAsync(JobKind.Shutdown, "dom0"));
        var missing = await Assert.ThrowsAsync<QubeRuleException>(() => jobs.EnqueueAsync(JobKind.Start, "nope"));
        var kind = await Assert.ThrowsAsync<QubeRuleException>(() => jobs.EnqueueAsync(new JobKind("format-disk"), "vault"));

        Assert.Contains("read-only", dom0.Message);
        Assert.Equal("There is no qube named 'nope'.", missing.Message);
        Assert.Equal("There is no job kind 'format-disk'.", kind.Message);
    }

    [Fact]
    public async Task A_second_job_on_a_locked_qube_is_refused_naming_the_holder_job()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);
        var contexts = host.Get<IDbContextFactory<InventoryDbContext>>();
        var holder = await InsertHeldJobAsync(contexts, "vault", JobState.Running);

        var error = await Assert.ThrowsAsync<JobConflictException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Start, "vault"));

        Assert.Equal(holder, error.HolderJobId);
        Assert.Contains($"job #{holder} (Shutdown vault) holds its lock", error.Message);
        await using var db = await contexts.CreateDbContextAsync();
        Assert.Equal([holder], await db.Jobs.Select(j => j.Id).ToListAsync());
    }

    [Fact]
    public async Task Two_start_jobs_queued_at_once_on_one_qube_give_one_job_and_one_conflict()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);
        var jobs = host.Get<JobEngine>();
        using var go = new Barrier(2);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            go.SignalAndWait();
            try { return (Job: await jobs.EnqueueAsync(JobKind.Start, "vault"), Error: (Exception?)null); }
            catch (Exception e) { return (Job: (Job?)null, Error: e); }
        })));

        // Exactly one start happens. The loser meets the lock, or finds vault running when it is checked; or, when
        // the winner ran and released its lock between the loser's check and its queueing, the loser's job fails
        // at run time because vault is already running.
        var queued = outcomes.Where(o => o.Job is not null).Select(o => o.Job!).ToList();
        if (queued.Count == 1)
        {
            var lost = Assert.Single(outcomes, o => o.Error is not null).Error!;
            Assert.True(lost is JobConflictException c ? c.HolderJobId == queued[0].Id : lost.Message == "'vault' is already running.", lost.ToString());
        }
        else
        {
            Assert.Equal(2, queued.Count);
            var ended = new List<Job>();
            foreach (var j in queued) ended.Add(await FinishedAsync(host, j.Id, TimeSpan.FromSeconds(30)));
            Assert.Single(ended, j => j.State == JobState.Succeeded);
            Assert.Single(ended, j => j.State == JobState.Failed && j.Error == "'vault' is already running.");
        }
    }

    [Fact]
    public async Task Cancelling_a_queued_job_marks_it_cancelled_and_releases_the_lock()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);
        var contexts = host.Get<IDbContextFactory<InventoryDbContext>>();
        var jobs = host.Get<JobEngine>();
        // Queued in the database but never handed to a worker: it stays queued until cancelled.
        var queued = await InsertHeldJobAsync(contexts, "vault", JobState.Queued, kind: "start");

        Assert.True(await jobs.CancelAsync(queued));

        var job = (await jobs.GetAsync(queued))!;
        Assert.Equal(JobState.Cancelled, job.State);
        Assert.NotNull(job.FinishedUtc);
        Assert.False(await LockedAsync(contexts, "vault"));
        Assert.False(await jobs.CancelAsync(queued));
        var next = await RunAsync(host, JobKind.Start, "vault");
        Assert.Equal(JobState.Succeeded, next.State);
    }

    [Fact]
    public async Task A_job_left_running_when_the_console_stopped_is_marked_interrupted_at_start_up_and_its_lock_released()
    {
        using var node = new TestNode();
        var dataDir = ConsoleHost.NewDataDir();
        var first = await StartAsync(node, dataDir);
        await first.StopAsync();
        var options = new DbContextOptionsBuilder<InventoryDbContext>();
        DataExtensions.Configure(options, Path.Combine(dataDir, "qubesweb.db"));
        long orphan;
        await using (var db = new InventoryDbContext(options.Options))
        {
            var job = new Job { Kind = "start", Target = "vault", State = JobState.Running, Progress = 30, Step = "Starting", CreatedUtc = DateTime.UtcNow, StartedUtc = DateTime.UtcNow };
            db.Jobs.Add(job);
            await db.SaveChangesAsync();
            db.Locks.Add(new QubeLock { QubeName = "vault", JobId = job.Id, AcquiredUtc = DateTime.UtcNow });
            await db.SaveChangesAsync();
            orphan = job.Id;
        }

        await using var host = await StartAsync(node, dataDir);

        var jobs = host.Get<JobEngine>();
        var recovered = (await jobs.GetAsync(orphan))!;
        Assert.Equal(JobState.Interrupted, recovered.State);
        Assert.NotNull(recovered.FinishedUtc);
        Assert.Contains(recovered.Log, l => l.Level == JobLogLevel.Warning && l.Text.Contains("interrupted"));
        Assert.Contains(recovered.Log, l => l.Text.StartsWith("libvirt reports ") && l.Text.EndsWith("its volumes were settled by start-up recovery."));
        Assert.False(await LockedAsync(host.Get<IDbContextFactory<InventoryDbContext>>(), "vault"));
        var next = await RunAsync(host, JobKind.Start, "vault");
        Assert.Equal(JobState.Succeeded, next.State);
    }

    [Fact]
    public async Task Shutting_down_a_netvm_with_running_clients_is_refused_naming_them()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);
        Assert.Equal(JobState.Succeeded, (await RunAsync(host, JobKind.Start, "work")).State);

        string message;
        try
        {
            var done = await RunAsync(host, JobKind.Shutdown, "sys-net");
            Assert.Equal(JobState.Failed, done.State);
            message = done.Error!;
        }
        catch (QubeRuleException refused)
        {
            message = refused.Message;
        }

        Assert.Equal("'sys-net' is the netvm of running qubes: work. Shut them down first, or confirm that they lose their network.", message);
        Assert.Equal(RunState.Running, host.Get<IHypervisor>().GetDomain("sys-net")!.State);
        Assert.False(await LockedAsync(host.Get<IDbContextFactory<InventoryDbContext>>(), "sys-net"));
    }

    [Fact]
    public async Task A_confirmed_shutdown_of_a_netvm_stops_it_and_leaves_the_clients_it_names_running_without_network()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);
        var commands = host.Get<Services.Qubes.QubeCommands>();
        var estate = host.Get<EstateMonitor>();
        Assert.Equal(JobState.Succeeded, (await RunAsync(host, JobKind.Start, "work")).State);

        // What a page asks the user about.
        var cutOff = await commands.CutOffIfStoppedAsync("sys-net");
        Assert.Equal(["work"], cutOff.Clients);
        // Confirming other qubes is not confirming work: refused, naming it, before anything is queued.
        var other = await Assert.ThrowsAsync<QubeRuleException>(() => commands.ShutdownAsync("sys-net", ["vault"]));
        Assert.Equal("'sys-net' is the netvm of running qubes: work. Shut them down first, or confirm that they lose their network.", other.Message);
        Assert.Equal(RunState.Running, estate.StateOf("sys-net"));

        var job = await FinishedAsync(host, (await commands.ShutdownAsync("sys-net", cutOff.Clients)).Id);

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(RunState.Halted, estate.StateOf("sys-net"));
        Assert.Equal(RunState.Running, estate.StateOf("work"));
        Assert.Contains(job.Log, l => l.Level == JobLogLevel.Warning
            && l.Text == "Shutting down as confirmed; left running, without network until sys-net runs again: work.");
        // Its link outlives it, so work's interface is still plugged in, waiting for sys-net's next start.
        Assert.Contains(host.Get<IHypervisor>().ListLinks(), l => l.Name == "qw-sys-net" && l.Active);
    }

    [Fact]
    public async Task A_shutdown_with_bad_confirmation_arguments_is_refused_with_a_sentence()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);
        Assert.Equal(JobState.Succeeded, (await RunAsync(host, JobKind.Start, "sys-net")).State);

        var bad = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Shutdown, "sys-net", "{\"confirmedCutOff\": 5}"));

        Assert.StartsWith("This job's arguments are not a valid ShutdownRequest:", bad.Message);
        Assert.Equal(RunState.Running, host.Get<EstateMonitor>().StateOf("sys-net"));
    }

    [Fact]
    public async Task Shutting_down_a_netvm_whose_clients_are_halted_succeeds()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);
        Assert.Equal(JobState.Succeeded, (await RunAsync(host, JobKind.Start, "sys-net")).State);

        var job = await RunAsync(host, JobKind.Shutdown, "sys-net");

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(RunState.Halted, host.Get<EstateMonitor>().StateOf("sys-net"));
    }

    [Fact]
    public async Task A_restart_ends_with_the_qube_running()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);
        Assert.Equal(JobState.Succeeded, (await RunAsync(host, JobKind.Start, "vault")).State);

        var job = await RunAsync(host, JobKind.Restart, "vault");

        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(100, job.Progress);
        Assert.Contains(job.Log, l => l.Text == "vault shut down.");
        Assert.Contains(job.Log, l => l.Text == "vault is running.");
        Assert.Equal(RunState.Running, host.Get<EstateMonitor>().StateOf("vault"));
    }

    [Fact]
    public async Task Pause_resume_and_kill_move_the_qube_through_those_states()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);
        var estate = host.Get<EstateMonitor>();
        Assert.Equal(JobState.Succeeded, (await RunAsync(host, JobKind.Start, "vault")).State);

        Assert.Equal(JobState.Succeeded, (await RunAsync(host, JobKind.Pause, "vault")).State);
        Assert.Equal(RunState.Paused, estate.StateOf("vault"));
        var startPaused = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Start, "vault"));
        Assert.Equal("'vault' is paused; resume it instead.", startPaused.Message);
        Assert.Equal(JobState.Succeeded, (await RunAsync(host, JobKind.Resume, "vault")).State);
        Assert.Equal(RunState.Running, estate.StateOf("vault"));
        Assert.Equal(JobState.Succeeded, (await RunAsync(host, JobKind.Kill, "vault")).State);
        Assert.Equal(RunState.Halted, estate.StateOf("vault"));
        var shutdownHalted = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(JobKind.Shutdown, "vault"));
        Assert.Equal("'vault' is not running.", shutdownHalted.Message);
    }

    /// <summary>
    /// A kind's checks and the lock it takes are one step: while the checks run, nothing else can commit. Checked
    /// before the lock, a creation that ended in between (qube made, lock let go) let a second tab's creation of the
    /// same name, checked against the free name, be queued too.
    /// </summary>
    [Fact]
    public async Task Nothing_can_commit_between_a_kinds_checks_and_the_lock_it_takes()
    {
        using var node = new TestNode();
        await using var host = await StartAsync(node);
        var contexts = host.Get<IDbContextFactory<InventoryDbContext>>();
        var probe = new CheckingKind();
        var engine = new JobEngine(contexts, [probe], NullLogger<JobEngine>.Instance);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await engine.StartAsync(cts.Token);
        try
        {
            var enqueued = engine.EnqueueAsync(probe.Kind, "twin", cts.Token);
            await probe.Checking.Task.WaitAsync(cts.Token);

            // Another writer cannot get in while the checks run: here, the end of another tab's creation of the same
            // name, letting go of its lock. (Microsoft.Data.Sqlite retries a busy database until the command's timeout.)
            await using (var db = await contexts.CreateDbContextAsync(cts.Token))
            await using (var other = new SqliteConnection(db.Database.GetConnectionString()))
            {
                await other.OpenAsync(cts.Token);
                await using var release = other.CreateCommand();
                release.CommandTimeout = 1;
                release.CommandText = "DELETE FROM Locks WHERE QubeName = 'twin'";
                var busy = await Assert.ThrowsAsync<SqliteException>(() => release.ExecuteNonQueryAsync(cts.Token));
                Assert.Equal(5, busy.SqliteErrorCode); // SQLITE_BUSY
            }

            probe.Release.SetResult();
            var job = await enqueued;
            Assert.Equal(JobState.Succeeded, (await engine.WaitAsync(job.Id, cts.Token)).State);
            Assert.False(await LockedAsync(contexts, "twin"));
        }
        finally
        {
            probe.Release.TrySetResult();
            await engine.StopAsync(CancellationToken.None);
            engine.Dispose();
        }
    }

    /// <summary>A job kind whose checks wait for the test, to look at the database while they run.</summary>
    private sealed class CheckingKind : IJobKind
    {
        public JobKind Kind { get; } = new("checking-probe");
        public TaskCompletionSource Checking { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public string Describe(string target) => $"Probe {target}";

        public async Task ValidateAsync(string target, string? arguments, CancellationToken ct)
        {
            Checking.TrySetResult();
            await Release.Task.WaitAsync(ct);
        }

        public Task RunAsync(JobContext job, CancellationToken ct) => Task.CompletedTask;
        public Task RecoverAsync(JobContext job, CancellationToken ct) => Task.CompletedTask;
    }
}
