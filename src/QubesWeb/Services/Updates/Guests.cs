using System.Text;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Agent;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Storage;

namespace QubesWeb.Services.Updates;

/// <summary>A program's end inside a qube.</summary>
public sealed record GuestRun(int ExitCode, string Output);

/// <summary>
/// What the update jobs need from a running qube: wait for it to answer, run a program (a path and its arguments,
/// never a shell line) with its output handed over as it comes. Two real implementations: the QEMU guest agent, and
/// the demo's simulated guest, for libvirt's test driver, which has no guests at all.
/// </summary>
public interface IGuest
{
    /// <summary>Shown in the job's log, so a simulated run can never pass for a real one.</summary>
    string Description { get; }

    Task WaitReadyAsync(TimeSpan timeout, CancellationToken ct);

    /// <summary>
    /// Runs the program with its output going into <paramref name="output"/> (bounded there) and written as it comes;
    /// <paramref name="running"/> is told how long it has run while it runs, so the job's progress goes on.
    /// <paramref name="env"/>: NAME=value entries it gets besides the guest's own (the updates proxy).
    /// </summary>
    Task<GuestRun> RunAsync(string path, IReadOnlyList<string> args, TimeSpan timeout, GuestOutputLog output, CancellationToken ct,
        Func<TimeSpan, Task>? running = null, IReadOnlyList<string>? env = null);
}

/// <summary>A real qube's guest agent, reached through libvirt (virDomainQemuAgentCommand).</summary>
public sealed class AgentGuest(string name, GuestAgent agent) : IGuest
{
    private readonly GuestAgent _agent = agent;

    public AgentGuest(string name, LibvirtHypervisor hypervisor)
        : this(name, new GuestAgent(new LibvirtAgentTransport(name, call => hypervisor.WithDomain(name, call))))
    {
    }

    public string Description => $"{name}'s guest agent";

    public async Task WaitReadyAsync(TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        var wait = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            try
            {
                await _agent.PingAsync(ct);
                return;
            }
            catch (Exception e) when (NotUpYet(e) && DateTime.UtcNow < deadline)
            {
                // The agent comes up some seconds into the boot: asked again, less often each time.
                await Task.Delay(wait, ct);
                wait = TimeSpan.FromMilliseconds(Math.Min(wait.TotalMilliseconds * 2, 2000));
            }
        }
    }

    /// <summary>
    /// Until the guest's agent has started, libvirt says it is not connected (GuestAgentUnavailableException) or the
    /// ping times out. A driver that passes no agent commands at all will not change its mind: that is not waited out.
    /// </summary>
    private static bool NotUpYet(Exception e) => e switch
    {
        GuestAgentUnavailableException { InnerException: Hypervisor.Libvirt.LibvirtException { Code: Hypervisor.Libvirt.ErrorNumber.NoSupport } } => false,
        GuestAgentUnavailableException or GuestAgentException or TimeoutException => true,
        _ => false,
    };

    public async Task<GuestRun> RunAsync(string path, IReadOnlyList<string> args, TimeSpan timeout, GuestOutputLog output, CancellationToken ct,
        Func<TimeSpan, Task>? running = null, IReadOnlyList<string>? env = null)
    {
        // qemu-ga hands output over when the program ends (or is killed), so it reaches the log in one piece then.
        // Only what the log can still take is decoded: a flood of 16 MiB per stream stays bytes that are counted.
        output.BeginRun();
        var text = new StringBuilder();
        var budget = output.RunBudget;
        var stream = GuestOutputStream.StdOut;
        try
        {
            var result = await _agent.RunAsync(path, args, timeout, chunk =>
            {
                // stdout, then stderr on a line of its own, as before.
                if (chunk.Stream != stream && text.Length > 0 && text[^1] != '\n') Take("\n");
                stream = chunk.Stream;
                Take(chunk.Text);
            }, ct, budget, running, env);
            return new GuestRun(result.ExitCode ?? 128 + (result.Signal ?? 0), text.ToString());
        }
        finally
        {
            await output.FlushAsync(endOfRun: true);
        }

        void Take(string s)
        {
            if (text.Length < budget) text.Append(s);
            output.Take(s);
        }
    }
}

/// <summary>
/// The demo's guest (demo mode only): libvirt's test driver runs no guest, so this one prints what the package
/// manager would, and writes a few MiB into the qube's dirty overlay with qemu-io as the installed packages would,
/// so that the new revision, the outdated marks and compaction all act on real files. Its output says it is simulated.
/// </summary>
public sealed class SimulatedGuest(Qube qube, string dirtyOverlay) : IGuest
{
    private const long MiB = 1L << 20;

    public string Description => $"the demo's simulated guest in {qube.Name} (libvirt's test driver has no guest agent)";

    public Task WaitReadyAsync(TimeSpan timeout, CancellationToken ct) => Task.CompletedTask;

    public async Task<GuestRun> RunAsync(string path, IReadOnlyList<string> args, TimeSpan timeout, GuestOutputLog output, CancellationToken ct,
        Func<TimeSpan, Task>? running = null, IReadOnlyList<string>? env = null)
    {
        output.BeginRun();
        async Task onLines(string text)
        {
            output.Take(text + "\n");
            await output.FlushAsync();
        }
        var fedora = path.EndsWith("dnf", StringComparison.Ordinal);
        var checkOnly = args.Contains("check-update") || args.Contains("-s");
        // A qube updated within the hour has nothing new waiting: the demo stays coherent after an update.
        var fresh = DateTime.TryParse(qube.Feature("last-update"), null, System.Globalization.DateTimeStyles.RoundtripKind, out var last)
                    && DateTime.UtcNow - last.ToUniversalTime() < TimeSpan.FromHours(1);
        var packages = fresh ? [] : Packages(fedora);
        var lines = new List<string> { $"[simulated by the demo] {path} {string.Join(' ', args)}" };
        if (checkOnly)
        {
            lines.AddRange(packages.Select(p => fedora ? $"{p.Name}.x86_64  {p.Version}  updates" : $"Inst {p.Name} ({p.Version} Debian:13/stable [amd64])"));
            await onLines(string.Join('\n', lines));
            await output.FlushAsync(endOfRun: true);
            // dnf check-update's exit code 100 means "updates are available"; apt-get -s lists them as "Inst" lines.
            return new GuestRun(fedora && packages.Length > 0 ? 100 : 0, string.Join('\n', lines));
        }
        await onLines(string.Join('\n', lines));

        // Paced a little so the log visibly streams, as a real package manager's would.
        foreach (var (p, i) in packages.Select((p, i) => (p, i)))
        {
            ct.ThrowIfCancellationRequested();
            var line = fedora ? $"[simulated]  Upgrading        : {p.Name}-{p.Version}.x86_64    {i + 1}/{packages.Length}"
                              : $"[simulated] Unpacking {p.Name} ({p.Version}) over (older) ...";
            lines.Add(line);
            await onLines(line);
            // The package's new files replace its old ones (a MiB over what the template was installed with, so the
            // old revision's data is shadowed, as a real upgrade leaves it) and add some more elsewhere.
            await QemuImg.WritePatternAsync(dirtyOverlay, (byte)(0x60 + i), i * 2 * MiB, MiB, ct);
            var offset = (1 + (DateTime.UtcNow.Ticks / TimeSpan.TicksPerSecond % 64)) * 8 * MiB + i * MiB;
            await QemuImg.WritePatternAsync(dirtyOverlay, (byte)(0x60 + i), offset, MiB, ct);
            await Task.Delay(150, ct);
        }
        var done = $"[simulated] Complete! {packages.Length} packages upgraded.";
        lines.Add(done);
        await onLines(done);
        await output.FlushAsync(endOfRun: true);
        return new GuestRun(0, string.Join('\n', lines));
    }

    private static (string Name, string Version)[] Packages(bool fedora) => fedora
        ? [("firefox", "133.0-1.fc42"), ("kernel-core", "6.12.4-200.fc42"), ("openssl-libs", "3.2.2-9.fc42"), ("glibc", "2.40-14.fc42"), ("systemd", "256.9-1.fc42")]
        : [("firefox-esr", "128.5.1esr-1~deb13u1"), ("linux-image-amd64", "6.12.5-1"), ("libssl3t64", "3.3.2-2"), ("libc6", "2.40-4"), ("systemd", "257-2")];
}

/// <summary>Which guest a qube has: the simulation in demo mode, its guest agent otherwise.</summary>
public sealed class Guests(LibvirtHypervisor hypervisor, Microsoft.Extensions.Options.IOptions<EstateOptions> options)
{
    public bool Simulated => options.Value.IsDemo;

    public IGuest For(Qube qube) => Simulated
        ? new SimulatedGuest(qube, qube.Volumes.First(v => v.IsSaveOnStopRoot).Path!)
        : new AgentGuest(qube.Name, hypervisor);
}

/// <summary>The package manager commands of a qube, from its os-distribution feature or its own qubesweb-update-command.</summary>
public static class UpdateCommands
{
    public const string CommandFeature = QubeFeatureRules.UpdateCommandKey;

    /// <summary>The programs an update runs, in order; each a path and its arguments.</summary>
    public static IReadOnlyList<(string Path, string[] Args)> Update(Qube qube)
    {
        if (qube.Feature(CommandFeature) is { Length: > 0 } custom)
        {
            var parts = custom.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (!parts[0].StartsWith('/')) throw new QubeRuleException($"The feature {CommandFeature} of {qube.Name} must start with an absolute path; it is '{QubeRules.Shown(custom)}'.");
            return [(parts[0], parts[1..])];
        }
        return Family(qube) switch
        {
            "fedora" => [("/usr/bin/dnf", ["-y", "upgrade", "--refresh"])],
            "debian" => [("/usr/bin/apt-get", ["-q", "update"]), ("/usr/bin/apt-get", ["-q", "-y", "dist-upgrade"])],
            var other => throw new QubeRuleException($"No update command is known for {qube.Name} (os-distribution '{QubeRules.Shown(other)}'); set its feature {CommandFeature}, e.g. '/usr/bin/dnf -y upgrade'."),
        };
    }

    /// <summary>The program that says whether updates are waiting, and how to read its exit code.</summary>
    public static (string Path, string[] Args, Func<GuestRun, bool> Available) Check(Qube qube) => Family(qube) switch
    {
        "fedora" => ("/usr/bin/dnf", ["-q", "check-update", "--refresh"], r => r.ExitCode == 100),
        "debian" => ("/usr/bin/apt-get", ["-s", "-q", "dist-upgrade"], r => r.Output.Split('\n').Any(l => l.StartsWith("Inst ", StringComparison.Ordinal))),
        var other => throw new QubeRuleException($"No update check is known for {qube.Name} (os-distribution '{QubeRules.Shown(other)}')."),
    };

    private static string Family(Qube qube) => qube.Feature("os-distribution")?.ToLowerInvariant() switch
    {
        "fedora" => "fedora",
        "debian" or "ubuntu" => "debian",
        var other => other ?? "unknown",
    };
}
