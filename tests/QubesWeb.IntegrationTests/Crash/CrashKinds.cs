// The crash matrix's rows: for each job kind, the estate it needs (made in the child console that is then killed), the
// job it runs, the steps (fault points) a crash is aimed at, and what the recovered estate must show afterwards. The
// child harness (CrashHarness) and the test (CrashMatrixTests) share this one catalogue.
//
// A row aims at every point its job reaches: the child says each point it reaches, and the matrix fails on one that
// no row of the kind aims at. Which points a job reaches depends on the estate, and each row makes one; a kind reaches
// these only in estates no row makes, so they are aimed at where the same step runs in another kind or row:
// - merge-renamed and revision-deleted: the retention after any commit or stop (kill, restart, commit, update, an
//   AppVM's stop releasing its template's revision), aimed at in shutdown+merge and compact+unread;
// - private-snapshot-copied: a start of a named disposable copies as a launch does, aimed at in launch-disposable;
// - a start's steps for a netvm that is not running yet (every netvm here runs from the start): the same steps, with
//   the same names, as the target's own;
// - a failed update or check stopping its qube ("stopped", then its writes dropped): the same step as a check's;
// - restart-outdated shutting its template down first: a shutdown job of its own, with the shutdown's steps.
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;
using QubesWeb.Services.Templates;

namespace QubesWeb.IntegrationTests.Crash;

public sealed class CrashKind
{
    /// <summary>The job kind the case runs (a kind registered in the job engine).</summary>
    public required string Kind { get; init; }

    /// <summary>A second estate for the same kind, for the steps the first never reaches (say, a merge of an old revision).</summary>
    public string? Variant { get; init; }

    /// <summary>The row's name, as the child is told it: the kind, and its variant if any.</summary>
    public string Name => Variant is null ? Kind : $"{Kind}+{Variant}";

    public required string Target { get; init; }

    /// <summary>
    /// The fault points aimed at: every point the job reaches in this estate (the matrix checks that against what the
    /// child says it reached) that no other row of the kind aims at. Inside the job, <c>NAME</c> means
    /// <c>KIND/NAME</c>; a step that names another kind (<c>restart/stopped</c>) is a point in a job the case's job
    /// started (<see cref="AlsoRuns"/>).
    /// </summary>
    public required string[] Steps { get; init; }

    /// <summary>Kinds of the jobs the case's job starts (an orchestrator's): their points are steps of the case too, named <c>KIND/NAME</c>.</summary>
    public string[] AlsoRuns { get; init; } = [];

    /// <summary>What the job needs, made in the child console before the job (no fault point of the case's kind is passed).</summary>
    public Func<CrashEstate, Task> Setup { get; init; } = _ => Task.CompletedTask;

    /// <summary>Queues the job (or makes the console queue it) and returns its id.</summary>
    public required Func<CrashEstate, Task<long>> Run { get; init; }

    /// <summary>The template or standalone whose root the job touches: compared before and after, and started after.</summary>
    public string? Root { get; init; }

    /// <summary>A root the job only reads (a clone's source): reference copies are kept to compare the copy with.</summary>
    public string? ReadsRoot { get; init; }

    /// <summary>The job writes new data into the root (an update), so a new revision has nothing to compare with.</summary>
    public bool MakesNewData { get; init; }

    /// <summary>What the recovered estate shows for a crash at <c>step</c>: the revision the root must be on, the qubes that must (not) exist.</summary>
    public required Func<CrashEstate, string, Task> Verify { get; init; }

    public string FaultPoint(string step) => step.Contains('/') ? step : $"{Kind}/{step}";

    /// <summary>
    /// A point the child reached (<c>KIND/NAME</c>, or a bare name outside jobs) as a step of this case: <c>NAME</c> in
    /// the case's kind, <c>KIND/NAME</c> in a kind it also runs, null for any other job's point.
    /// </summary>
    public string? StepOf(string reached)
    {
        var slash = reached.IndexOf('/');
        if (slash < 0) return null;
        var kind = reached[..slash];
        return kind == Kind ? reached[(slash + 1)..] : AlsoRuns.Contains(kind) ? reached : null;
    }

    public override string ToString() => Name;
}

public static class CrashKinds
{
    private const long MiB = 1L << 20;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    public const string Template = "debian-13";

    /// <summary>A standalone: its root is its own, and nothing else reads it (no snapshot holds a revision of it).</summary>
    public const string Standalone = "devbox";

    public static readonly IReadOnlyList<CrashKind> All =
    [
        new()
        {
            Kind = JobKind.Create.Name, Target = "crash-new", Steps = ["private-made", "row-added", "defined", "done"],
            Run = h => EnqueueAsync(h, JobKind.Create, "crash-new", new CreateQubeRequest(QubeClass.AppVM, "red", Template, null)),
            // Before its row the qube does not exist and its folder goes; from its row on it exists and its domain is defined from it.
            Verify = (h, step) => step == "private-made" ? AbsentAsync(h, "crash-new") : StartsAsync(h, "crash-new"),
        },
        new()
        {
            Kind = JobKind.Clone.Name, Target = "crash-clone", ReadsRoot = Template, Steps = ["overlay-made", "root-renamed", "row-added", "defined", "done"],
            Run = h => EnqueueAsync(h, JobKind.Clone, "crash-clone", new CloneRequest(QubeClass.StandaloneVM, Template, "orange")),
            Verify = async (h, step) =>
            {
                // The overlay made but no row: nothing of the clone is left, not even its renamed root.
                if (step is "overlay-made" or "root-renamed") { await AbsentAsync(h, "crash-clone"); return; }
                // The root reads as the source's revision it was made on, through the overlay or (once the detach that
                // start-up queued has run: the row holds the pin even when the clone died before queueing it) on its own.
                await EstateConsistency.AssertRootEqualsAsync(h, "crash-clone", EstateConsistency.RefFile(h.DataDir, 1));
                await IndependentAsync(h, "crash-clone");
                await EstateConsistency.AssertRootEqualsAsync(h, "crash-clone", EstateConsistency.RefFile(h.DataDir, 1));
                await StartsAsync(h, "crash-clone");
            },
        },
        new()
        {
            // A clone whose detach is held back (its qube's lock taken) and paused, then resumed as the case's job:
            // killed with the flattened copy written, synced, renamed over the bottom revision, recorded, and done.
            Kind = JobKind.Detach.Name, Target = "crash-detach", ReadsRoot = Template, Steps = ["converted", "synced", "swapped", "saved", "done"],
            Setup = async h =>
            {
                using (await h.Get<RootLocks>().LockAsync("crash-detach", CancellationToken.None))
                {
                    await SucceedsAsync(h, JobKind.Clone, "crash-detach", new CloneRequest(QubeClass.StandaloneVM, Template, "orange"));
                    await h.Get<DetachCommands>().PauseAsync("crash-detach");
                }
            },
            Run = async h => (await h.Get<DetachCommands>().ResumeAsync("crash-detach")).Id,
            Verify = async (h, step) =>
            {
                await IndependentAsync(h, "crash-detach");
                await EstateConsistency.AssertRootEqualsAsync(h, "crash-detach", EstateConsistency.RefFile(h.DataDir, 1));
                await StartsAsync(h, "crash-detach");
            },
        },
        new()
        {
            // Killed once the digest matched (nothing written yet), with the copy made or renamed but no row, with the
            // row, with the domain, and done.
            Kind = JobKind.Import.Name, Target = "crash-import", Steps = ["verified", "converted", "root-renamed", "row-added", "defined", "done"],
            Setup = async h =>
            {
                await QemuImg.CreateAsync(ImportImage(h), 1L << 30);
                await QemuImg.WritePatternAsync(ImportImage(h), 0x3c, MiB, 8 * MiB);
            },
            Run = async h =>
            {
                string digest;
                await using (var f = File.OpenRead(ImportImage(h))) digest = Convert.ToHexStringLower(await System.Security.Cryptography.SHA256.HashDataAsync(f));
                return await EnqueueAsync(h, JobKind.Import, "crash-import", new ImportTemplateRequest(ImportImage(h), "black", "debian", digest));
            },
            Verify = async (h, step) =>
            {
                if (step is "verified" or "converted" or "root-renamed") { await AbsentAsync(h, "crash-import"); return; }
                await EstateConsistency.AssertRootEqualsAsync(h, "crash-import", ImportImage(h));
                await StartsAsync(h, "crash-import");
            },
        },
        new()
        {
            // Killed with the disposable half made, made, defined, with the snapshot of default-dvm's private copied but
            // not named yet, with its volumes made and recorded, started, and launched: the next start removes it
            // without a trace (a disposable that is not running is removed).
            Kind = JobKind.LaunchDisposable.Name, Target = "disp42",
            Steps = ["private-made", "row-added", "defined", "private-snapshot-copied", "volumes-made", "volumes-prepared", "started", "done"],
            Run = h => EnqueueAsync(h, JobKind.LaunchDisposable, "disp42", new Services.Disposables.LaunchDisposableRequest("default-dvm")),
            Verify = (h, _) => AbsentAsync(h, "disp42"),
        },
        new()
        {
            // A preload (as the preloader queues one) also pauses the started disposable; its other steps are the
            // launch's, aimed at above.
            Kind = JobKind.LaunchDisposable.Name, Variant = "preload", Target = "disp43", Steps = ["paused", "done"],
            Run = h => EnqueueAsync(h, JobKind.LaunchDisposable, "disp43", new Services.Disposables.LaunchDisposableRequest("default-dvm", Preload: true)),
            Verify = (h, _) => AbsentAsync(h, "disp43"),
        },
        new()
        {
            Kind = JobKind.Remove.Name, Target = "banking", Steps = ["undefined", "row-removed", "file-deleted", "done"],
            Run = h => EnqueueAsync(h, JobKind.Remove, "banking"),
            // Its row still there, the qube was not removed (the domain is defined again); once the row went, nothing is left.
            Verify = (h, step) => step == "undefined" ? StartsAsync(h, "banking") : AbsentAsync(h, "banking"),
        },
        new()
        {
            Kind = "start", Target = "vault", Steps = ["volumes-made", "volumes-prepared", "started", "done"],
            Run = h => EnqueueAsync(h, JobKind.Start, "vault"),
            Verify = (h, _) => StartsAsync(h, "vault"),
        },
        new()
        {
            // Its writes are committed by the job, or by the recovery's commit when the job did not get there.
            Kind = "shutdown", Target = Template, Root = Template, Steps = ["stopped", "commit-journaled", "commit-renamed", "done"],
            Setup = h => RunningWithWritesAsync(h, Template),
            Run = h => EnqueueAsync(h, JobKind.Shutdown, Template),
            Verify = (h, _) => OnRevisionAsync(h, Template, 2),
        },
        new()
        {
            // Keeping no old revision, the commit's retention merges revision 1 into revision 2 (revision 1 was the
            // standalone's only one, and nothing else reads it); its other steps are the shutdown's, aimed at above.
            Kind = "shutdown", Variant = "merge", Target = Standalone, Root = Standalone, Steps = ["merge-renamed"],
            Setup = async h =>
            {
                await h.Get<RootRetention>().SetRevisionsToKeepAsync(Standalone, 0);
                await RunningWithWritesAsync(h, Standalone);
            },
            Run = h => EnqueueAsync(h, JobKind.Shutdown, Standalone),
            // Killed after the merged file took revision 2's place: the recovery drops revision 1, whose file is gone.
            Verify = (h, _) => RevisionsAsync(h, Standalone, current: 2, [2]),
        },
        new()
        {
            Kind = "kill", Target = Template, Root = Template, Steps = ["stopped", "commit-journaled", "commit-renamed", "done"],
            Setup = h => RunningWithWritesAsync(h, Template),
            Run = h => EnqueueAsync(h, JobKind.Kill, Template),
            Verify = (h, _) => OnRevisionAsync(h, Template, 2),
        },
        new()
        {
            // The writes of the run before the restart are committed whatever the step; the new run writes nothing.
            Kind = "restart", Target = Template, Root = Template,
            Steps = ["stopped", "commit-journaled", "commit-renamed", "volumes-made", "volumes-prepared", "started", "done"],
            Setup = h => RunningWithWritesAsync(h, Template),
            Run = h => EnqueueAsync(h, JobKind.Restart, Template),
            Verify = (h, _) => OnRevisionAsync(h, Template, 2),
        },
        new()
        {
            Kind = "pause", Target = "vault", Steps = ["paused", "done"],
            Setup = h => SucceedsAsync(h, JobKind.Start, "vault"),
            Run = h => EnqueueAsync(h, JobKind.Pause, "vault"),
            Verify = (h, _) => StartsAsync(h, "vault"),
        },
        new()
        {
            Kind = "resume", Target = "vault", Steps = ["resumed", "done"],
            Setup = async h =>
            {
                await SucceedsAsync(h, JobKind.Start, "vault");
                await SucceedsAsync(h, JobKind.Pause, "vault");
            },
            Run = h => EnqueueAsync(h, JobKind.Resume, "vault"),
            Verify = (h, _) => StartsAsync(h, "vault"),
        },
        new()
        {
            Kind = JobKind.Commit.Name, Target = Template, Root = Template, Steps = ["commit-journaled", "commit-renamed", "done"],
            Setup = h => RunningWithWritesAsync(h, Template),
            // Stopped behind the console's back (as virsh would): the console commits the writes in a job of its own.
            Run = async h =>
            {
                h.Get<IHypervisor>().Kill(Template);
                var jobs = h.Get<JobEngine>();
                Job? commit = null;
                await Eventually.UntilAsync(async () =>
                    (commit = (await jobs.QueryAsync(new JobQuery { Target = Template })).FirstOrDefault(j => JobKind.Commit.Is(j))) is not null,
                    "the console's commit job", Deadline);
                return commit!.Id;
            },
            Verify = (h, _) => OnRevisionAsync(h, Template, 2),
        },
        new()
        {
            // Until the package manager wrote, the template stays on revision 1 (its empty overlay is dropped); from
            // then on the recovery commits what the update wrote, as the job would have.
            Kind = JobKind.Update.Name, Target = Template, Root = Template, MakesNewData = true,
            Steps = ["volumes-made", "volumes-prepared", "started", "commands-ran", "stopped", "commit-journaled", "commit-renamed", "done"],
            Run = h => EnqueueAsync(h, JobKind.Update, Template),
            Verify = (h, step) => OnRevisionAsync(h, Template, step is "volumes-made" or "volumes-prepared" or "started" ? 1 : 2),
        },
        new()
        {
            // A check writes nothing to keep: the template stays on revision 1 whatever the step.
            Kind = JobKind.CheckUpdates.Name, Target = Template, Root = Template,
            Steps = ["volumes-made", "volumes-prepared", "started", "checked", "stopped", "done"],
            Run = h => EnqueueAsync(h, JobKind.CheckUpdates, Template),
            Verify = (h, _) => OnRevisionAsync(h, Template, 1),
        },
        new()
        {
            // A revert is one write: before it the root is on revision 2, after it on revision 1.
            Kind = JobKind.Revert.Name, Target = Template, Root = Template, Steps = ["checked", "done"],
            Setup = UpdatedOnceAsync,
            Run = h => EnqueueAsync(h, JobKind.Revert, Template, new RevertRootRequest(1)),
            Verify = (h, step) => OnRevisionAsync(h, Template, step == "checked" ? 2 : 1),
        },
        new()
        {
            // mail (started by the demo at every start) runs on revision 1, so the compaction keeps it (let go once read no more).
            Kind = JobKind.Compact.Name, Target = Template, Root = Template, Steps = ["converted", "compared", "swapped", "saved", "done"],
            Setup = UpdatedOnceAsync,
            Run = h => EnqueueAsync(h, JobKind.Compact, Template, new CompactRequest()),
            Verify = (h, _) => OnRevisionAsync(h, Template, 2),
        },
        new()
        {
            // With mail stopped first, nothing reads revision 1 and the compaction deletes it; its other steps are the
            // compaction's, aimed at above.
            Kind = JobKind.Compact.Name, Variant = "unread", Target = Template, Root = Template, Steps = ["revision-deleted"],
            Setup = async h =>
            {
                await SucceedsAsync(h, JobKind.Kill, "mail");
                await UpdatedOnceAsync(h);
            },
            Run = h => EnqueueAsync(h, JobKind.Compact, Template, new CompactRequest()),
            // Killed with revision 1's file gone and its row left: the recovery drops the row.
            Verify = (h, _) => RevisionsAsync(h, Template, current: 2, [2]),
        },
        new()
        {
            // mail (started by the demo at every start) runs on revision 1; the setup makes revision 2, so mail is outdated.
            Kind = JobKind.RestartOutdated.Name, Target = Template, Root = Template, AlsoRuns = [JobKind.Restart.Name],
            Steps = ["planned", "restart/stopped", "restart/volumes-made", "restart/volumes-prepared", "restart/started", "restart/done", "done"],
            Setup = UpdatedOnceAsync,
            Run = h => EnqueueAsync(h, JobKind.RestartOutdated, Template, new RestartOutdatedRequest()),
            Verify = async (h, _) =>
            {
                await OnRevisionAsync(h, Template, 2);
                await StartsAsync(h, "mail", alreadyRunning: true);
            },
        },
    ];

    public static CrashKind Of(string name) => All.Single(k => k.Name == name);

    // --- the steps the child takes before the job ---

    private static async Task RunningWithWritesAsync(CrashEstate host, string qube)
    {
        await SucceedsAsync(host, JobKind.Start, qube);
        await QemuImg.WritePatternAsync(Pool(host, qube, RootFiles.Dirty), 0xab, 32 * MiB, 4 * MiB);
    }

    private static async Task UpdatedOnceAsync(CrashEstate host)
    {
        await RunningWithWritesAsync(host, Template);
        await SucceedsAsync(host, JobKind.Shutdown, Template);
    }

    public static string Pool(CrashEstate host, string qube, string file) => Path.Combine(host.DataDir, "pool", qube, file);

    /// <summary>The image the import case imports: on dom0's disk, outside the pool.</summary>
    private static string ImportImage(CrashEstate host)
    {
        Directory.CreateDirectory(Path.Combine(host.DataDir, "images"));
        return Path.Combine(host.DataDir, "images", "crash-import.qcow2");
    }

    private static async Task<long> EnqueueAsync(CrashEstate host, JobKind kind, string target) =>
        (await host.Get<JobEngine>().EnqueueAsync(kind, target)).Id;

    private static async Task<long> EnqueueAsync<T>(CrashEstate host, JobKind kind, string target, T arguments) where T : class =>
        (await host.Get<JobEngine>().EnqueueAsync(kind, target, arguments, CancellationToken.None)).Id;

    // --- what the recovered estate must show ---

    private static async Task AbsentAsync(CrashEstate host, string name)
    {
        Assert.Null(await host.Get<Inventory>().FindAsync(name));
        Assert.Null(host.Get<IHypervisor>().GetDomain(name));
        Assert.False(Directory.Exists(Path.Combine(host.DataDir, "pool", name)), $"pool/{name} is left");
    }

    /// <summary>The qube exists in all three places and starts (and shuts down) as any other.</summary>
    private static async Task StartsAsync(CrashEstate host, string name, bool alreadyRunning = false)
    {
        Assert.NotNull(await host.Get<Inventory>().FindAsync(name));
        if (!alreadyRunning) await SucceedsAsync(host, JobKind.Start, name);
        Assert.Equal(RunState.Running, host.Get<Services.Estate.EstateMonitor>().StateOf(name));
        await SucceedsAsync(host, JobKind.Shutdown, name);
    }

    /// <summary>The detach start-up queued again (unless it had finished) has made the root independent: no pin, no backing file.</summary>
    private static async Task IndependentAsync(CrashEstate host, string name)
    {
        await Eventually.UntilAsync(async () => await host.Get<RootDetach>().DependencyAsync(name) is null, $"{name} to be independent");
        var history = (await host.Get<RootRevisions>().HistoryAsync(name))!;
        Assert.Null((await QemuImg.InfoAsync(Pool(host, name, RootFiles.Revision(history.Revisions.Min(r => r.Number))))).BackingFile);
    }

    private static async Task OnRevisionAsync(CrashEstate host, string qube, int revision) =>
        Assert.Equal(revision, (await host.Get<RootRevisions>().HistoryAsync(qube))!.Current);

    /// <summary>The root is on <paramref name="current"/>, and has exactly the revisions <paramref name="numbers"/>.</summary>
    private static async Task RevisionsAsync(CrashEstate host, string qube, int current, int[] numbers)
    {
        var history = (await host.Get<RootRevisions>().HistoryAsync(qube))!;
        Assert.Equal(current, history.Current);
        Assert.Equal(numbers, history.Revisions.Select(r => r.Number).Order());
    }
}
