// The child side of the crash matrix: `dotnet QubesWeb.IntegrationTests.dll crash-case DATA_DIR CASE` (a row's name)
// with QUBESWEB_KILL_AT=KIND/STEP starts the console's services (CrashConsole) on DATA_DIR in this process, makes the
// estate the case needs, keeps reference copies of the root the job touches, runs the job and waits: the console kills
// this process at STEP. Reaching the job's end instead is a failure of the case (exit code 3), as is a setup that fails
// (exit code 4).
using QubesWeb.Services;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Storage;

namespace QubesWeb.IntegrationTests.Crash;

public static class CrashHarness
{
    public const string Command = "crash-case";
    public const string JobLine = "CRASH-CASE JOB ";

    /// <summary>Said on standard error once the setup is done: the points reached after it are the job's.</summary>
    public const string RunLine = "CRASH-CASE RUN";
    public const int NotReached = 3, SetupFailed = 4;

    public static async Task<int> RunAsync(string dataDir, string name)
    {
        var crash = CrashKinds.Of(name);
        CrashEstate host;
        long id;
        try
        {
            // Never disposed: the process dies at the step.
            host = (await CrashConsole.StartAsync(dataDir)).Estate;
            await crash.Setup(host);
            if ((crash.Root ?? crash.ReadsRoot) is { } root) await KeepReferencesAsync(host, root);
            Console.Error.WriteLine(RunLine);
            id = await crash.Run(host);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"CRASH-CASE SETUP FAILED: {e}");
            return SetupFailed;
        }
        Console.WriteLine(JobLine + id);
        var job = await FinishedAsync(host, id, TimeSpan.FromSeconds(90));
        Console.Error.WriteLine($"CRASH-CASE NOT REACHED: job #{id} ({job.Kind} {job.Target}) ended {job.State} ({job.Error}) without passing {Environment.GetEnvironmentVariable(FaultPoints.Variable)}");
        return NotReached;
    }

    /// <summary>
    /// Each committed revision of <paramref name="root"/> flattened into DATA/crash-refs/rev-N.qcow2, and uncommitted
    /// writes as the revision they would become: what the recovered root must read like.
    /// </summary>
    private static async Task KeepReferencesAsync(CrashEstate host, string root)
    {
        var history = (await host.Get<RootRevisions>().HistoryAsync(root))!;
        Directory.CreateDirectory(Path.Combine(host.DataDir, EstateConsistency.RefsFolder));
        foreach (var r in history.Revisions)
            await QemuImg.ConvertAsync(CrashKinds.Pool(host, root, RootFiles.Revision(r.Number)), EstateConsistency.RefFile(host.DataDir, r.Number));
        var dirty = CrashKinds.Pool(host, root, RootFiles.Dirty);
        if (history.HasDirtyOverlay && await QemuImg.HasOwnDataAsync(dirty))
            await QemuImg.ConvertAsync(dirty, EstateConsistency.RefFile(host.DataDir, history.Revisions.Max(r => r.Number) + 1));
    }
}
