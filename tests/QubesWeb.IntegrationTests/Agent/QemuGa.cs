// A real QEMU guest agent (Debian's qemu-guest-agent) on a unix socket, one per test: the "guest" is this machine.
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace QubesWeb.IntegrationTests.Agent;

/// <summary>qemu-ga listening on a socket in a temporary folder of its own; disposing kills it, with whatever it
/// started, and deletes the folder.</summary>
public sealed class QemuGa : IDisposable
{
    public const string Program = "/usr/sbin/qemu-ga";
    private static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(20);

    private readonly ChildProcess _process;

    private QemuGa(string folder, ChildProcess process)
    {
        Folder = folder;
        _process = process;
    }

    public string Folder { get; }
    public string SocketPath => Path.Combine(Folder, "qga.sock");
    public string LogPath => Path.Combine(Folder, "qga.log");
    public int Pid => _process.Process.Id;
    public string Log => File.Exists(LogPath) ? File.ReadAllText(LogPath) : "";

    /// <summary>Why qemu-ga is no longer there, or null while it runs.</summary>
    public string? Ended => _process.Process.HasExited
        ? $"qemu-ga exited ({_process.Process.ExitCode}): {Log}{_process.Stderr}"
        : null;

    /// <summary>Starts qemu-ga (argument list, no shell) and returns once its socket accepts connections.</summary>
    public static async Task<QemuGa> StartAsync(params string[] extraArgs)
    {
        Assert.True(File.Exists(Program),
            $"{Program} is missing: install Debian's qemu-guest-agent (see the README's test command).");
        var folder = Path.Combine(Path.GetTempPath(), "qubesweb-qga-" + Guid.NewGuid().ToString("N"));
        // qemu-ga refuses to start when its state folder does not exist.
        Directory.CreateDirectory(Path.Combine(folder, "state"));
        var psi = new ProcessStartInfo(Program)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = folder,
        };
        foreach (var arg in (string[])
                 [
                     "--method", "unix-listen", "--path", Path.Combine(folder, "qga.sock"),
                     "--statedir", Path.Combine(folder, "state"),
                     // Only written when daemonizing; given so the default (/var/run/qemu-ga.pid) is never touched.
                     "--pidfile", Path.Combine(folder, "qga.pid"),
                     "--logfile", Path.Combine(folder, "qga.log"),
                     .. extraArgs,
                 ])
        {
            psi.ArgumentList.Add(arg);
        }
        var agent = new QemuGa(folder, ChildProcess.Start(psi));
        try
        {
            await agent.WaitUntilListeningAsync();
            return agent;
        }
        catch
        {
            agent.Dispose();
            throw;
        }
    }

    /// <summary>Retries connecting until the socket accepts (it exists and listens) or qemu-ga has ended.</summary>
    private async Task WaitUntilListeningAsync()
    {
        var refused = "";
        await Eventually.UntilAsync(async () =>
        {
            if (_process.Process.HasExited)
            {
                Assert.Fail($"qemu-ga exited ({_process.Process.ExitCode}) before listening: {Log}{_process.Stderr}");
            }
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await probe.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath));
                return true;
            }
            catch (SocketException e)
            {
                refused = e.Message;
                return false;
            }
        }, $"qemu-ga to listen on {SocketPath}", StartDeadline, () => $"{refused}; {Log}");
    }

    /// <summary>The processes qemu-ga started that are still there (running, or zombies not yet reaped).</summary>
    public IReadOnlyList<int> Children()
    {
        var children = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(dir, "stat"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // ended meanwhile
            }
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (int.Parse(fields[1], CultureInfo.InvariantCulture) == Pid)
            {
                children.Add(pid);
            }
        }
        return children;
    }

    public void Dispose()
    {
        _process.Dispose();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
