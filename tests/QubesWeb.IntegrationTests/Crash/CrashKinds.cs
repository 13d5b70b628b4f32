// The crash matrix's rows: for each job kind, the estate it needs (made in the child console that is then killed), the
// job it runs, the steps (fault points) a crash is aimed at, and what the recovered estate must show afterwards. The
// child harness (CrashHarness) and the test (CrashMatrixTests) share this one catalogue.
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

    public required string Target { get; init; }

    /// <summary>
    /// The fault points aimed at (a choice among the points the job passes, to keep the matrix within its time), inside the job: <c>NAME</c> means <c>KIND/NAME</c>; a step that names another kind
    /// (<c>restart/stopped</c>) is a point in a job the case's job started.
    /// </summary>
    public required string[] Steps { get; init; }

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

    public override string ToString() => Kind;
}

public static class CrashKinds
{
    private const long MiB = 1L << 20;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    public const string Template = "debian-13";

    public static readonly IReadOnlyList<CrashKind> All =
    [
        new()
        {
            Kind = JobKind.Create.Name, Target = "crash-new", Steps = ["private-made", "row-added"],
            Run = h => EnqueueAsync(h, JobKind.Create, "crash-new", new CreateQubeRequest(QubeClass.AppVM, "red", Template, null)),
            Verify = (h, step) => step == "private-made" ? AbsentAsync(h, "crash-new") : StartsAsync(h, "crash-new"),
        },
        new()
        {
            Kind = JobKind.Clone.Name, Target = "crash-clone", ReadsRoot = Template, Steps = ["copied", "row-added"],
            Run = h => EnqueueAsync(h, JobKind.Clone, "crash-clone", new CloneRequest(QubeClass.StandaloneVM, Template, "orange")),
            Verify = async (h, step) =>
            {
                if (step is "copied" or "root-renamed") { await AbsentAsync(h, "crash-clone"); return; }
                // The copy reads as the source's revision it was made from.
                await EstateConsistency.AssertRootEqualsAsync(h, "crash-clone", EstateConsistency.RefFile(h.DataDir, 1));
                await StartsAsync(h, "crash-clone");
            },
        },
        new()
        {
            // Killed once the digest matched (nothing written yet), with the copy made but no row, and with the row.
            Kind = JobKind.Import.Name, Target = "crash-import", Steps = ["verified", "converted", "row-added"],
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
                if (step is "verified" or "converted") { await AbsentAsync(h, "crash-import"); return; }
                await EstateConsistency.AssertRootEqualsAsync(h, "crash-import", ImportImage(h));
                await StartsAsync(h, "crash-import");
            },
        },
        new()
        {
            // Killed with the disposable half made, made, and started: the next start removes it without a trace.
            Kind = JobKind.LaunchDisposable.Name, Target = "disp42", Steps = ["private-made", "row-added", "started"],
            Run = h => EnqueueAsync(h, JobKind.LaunchDisposable, "disp42", new Services.Disposables.LaunchDisposableRequest("default-dvm")),
            Verify = (h, _) => AbsentAsync(h, "disp42"),
        },
        new()
        {
            Kind = JobKind.Remove.Name, Target = "banking", Steps = ["undefined", "row-removed"],
            Run = h => EnqueueAsync(h, JobKind.Remove, "banking"),
            Verify = (h, step) => step == "undefined" ? StartsAsync(h, "banking") : AbsentAsync(h, "banking"),
        },
        new()
        {
            Kind = "start", Target = "vault", Steps = ["volumes-prepared"],
            Run = h => EnqueueAsync(h, JobKind.Start, "vault"),
            Verify = (h, _) => StartsAsync(h, "vault"),
        },
        new()
        {
            Kind = "shutdown", Target = Template, Root = Template, Steps = ["stopped", "commit-journaled", "commit-renamed"],
            Setup = RunningWithWritesAsync,
            Run = h => EnqueueAsync(h, JobKind.Shutdown, Template),
            Verify = (h, _) => OnRevisionAsync(h, 2),
        },
        new()
        {
            Kind = "kill", Target = Template, Root = Template, Steps = ["stopped"],
            Setup = RunningWithWritesAsync,
            Run = h => EnqueueAsync(h, JobKind.Kill, Template),
            Verify = (h, _) => OnRevisionAsync(h, 2),
        },
        new()
        {
            Kind = "restart", Target = Template, Root = Template, Steps = ["started"],
            Setup = RunningWithWritesAsync,
            Run = h => EnqueueAsync(h, JobKind.Restart, Template),
            Verify = (h, _) => OnRevisionAsync(h, 2),
        },
        new()
        {
            Kind = "pause", Target = "vault", Steps = ["paused"],
            Setup = h => SucceedsAsync(h, JobKind.Start, "vault"),
            Run = h => EnqueueAsync(h, JobKind.Pause, "vault"),
            Verify = (h, _) => StartsAsync(h, "vault"),
        },
        new()
        {
            Kind = "resume", Target = "vault", Steps = ["resumed"],
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
            Kind = JobKind.Commit.Name, Target = Template, Root = Template, Steps = ["commit-journaled"],
            Setup = RunningWithWritesAsync,
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
            Verify = (h, _) => OnRevisionAsync(h, 2),
        },
        new()
        {
            Kind = JobKind.Update.Name, Target = Template, Root = Template, MakesNewData = true,
            Steps = ["commands-ran", "commit-renamed"],
            Run = h => EnqueueAsync(h, JobKind.Update, Template),
            Verify = (h, step) => OnRevisionAsync(h, step == "started" ? 1 : 2),
        },
        new()
        {
            Kind = JobKind.CheckUpdates.Name, Target = Template, Root = Template, Steps = ["checked"],
            Run = h => EnqueueAsync(h, JobKind.CheckUpdates, Template),
            Verify = (h, _) => OnRevisionAsync(h, 1),
        },
        new()
        {
            Kind = JobKind.Revert.Name, Target = Template, Root = Template, Steps = ["done"],
            Setup = UpdatedOnceAsync,
            Run = h => EnqueueAsync(h, JobKind.Revert, Template, new RevertRootRequest(1)),
            Verify = (h, step) => OnRevisionAsync(h, step == "checked" ? 2 : 1),
        },
        new()
        {
            Kind = JobKind.Compact.Name, Target = Template, Root = Template, Steps = ["compared", "swapped"],
            Setup = UpdatedOnceAsync,
            Run = h => EnqueueAsync(h, JobKind.Compact, Template, new CompactRequest()),
            Verify = (h, _) => OnRevisionAsync(h, 2),
        },
        new()
        {
            // mail (started by the demo at every start) runs on revision 1; the setup makes revision 2, so mail is outdated.
            Kind = JobKind.RestartOutdated.Name, Target = Template, Root = Template, Steps = ["planned", "restart/stopped"],
            Setup = UpdatedOnceAsync,
            Run = h => EnqueueAsync(h, JobKind.RestartOutdated, Template, new RestartOutdatedRequest()),
            Verify = async (h, _) =>
            {
                await OnRevisionAsync(h, 2);
                await StartsAsync(h, "mail", alreadyRunning: true);
            },
        },
    ];

    public static CrashKind Of(string kind) => All.Single(k => k.Kind == kind);

    // --- the steps the child takes before the job ---

    private static async Task RunningWithWritesAsync(CrashEstate host)
    {
        await SucceedsAsync(host, JobKind.Start, Template);
        await QemuImg.WritePatternAsync(Pool(host, Template, RootFiles.Dirty), 0xab, 32 * MiB, 4 * MiB);
    }

    private static async Task UpdatedOnceAsync(CrashEstate host)
    {
        await RunningWithWritesAsync(host);
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

    private static async Task OnRevisionAsync(CrashEstate host, int revision) =>
        Assert.Equal(revision, (await host.Get<RootRevisions>().HistoryAsync(Template))!.Current);
}
