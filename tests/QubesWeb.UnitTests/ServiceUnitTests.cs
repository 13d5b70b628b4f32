// The systemd unit that runs the published console in dom0: valid to systemd, and as sandboxed as it says it is.
using System.Globalization;
using System.Text.RegularExpressions;
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.UnitTests;

public sealed partial class ServiceUnitTests
{
    private static readonly string Unit = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "systemd", "qubesweb.service"));

    [Fact]
    public async Task Systemd_accepts_the_unit()
    {
        var (code, output) = await SystemdAnalyzeAsync("verify");
        Assert.True(code == 0 && output.Trim().Length == 0, $"systemd-analyze verify said ({code}):\n{output}");
    }

    [Fact]
    public async Task The_units_exposure_score_stays_low()
    {
        var (code, output) = await SystemdAnalyzeAsync("security", "--offline=true");
        Assert.True(code == 0, $"systemd-analyze security failed ({code}):\n{output}");
        var score = double.Parse(Exposure().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        // 2.2 when written; Debian's cockpit.service scores 7.2. A change that loosens the sandbox shows here.
        Assert.True(score <= 3.0, $"Exposure {score} (lower is better):\n{output}");
    }

    [Theory]
    [InlineData("NoNewPrivileges=yes")]
    [InlineData("ProtectSystem=strict")]
    [InlineData("StateDirectory=qubesweb")]
    [InlineData("PrivateTmp=yes")]
    [InlineData("ProtectHome=yes")]
    [InlineData("UMask=0077")]
    [InlineData("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_VSOCK AF_NETLINK")]
    [InlineData("SystemCallFilter=@system-service")]
    [InlineData("IPAddressAllow=localhost")]
    public void The_unit_keeps_its_sandbox(string line) =>
        Assert.Contains(line, Unit.Split('\n').Select(l => l.Trim()));

    /// <summary>
    /// Runs systemd-analyze on a copy of the unit whose ExecStart names this machine's dotnet and the console built
    /// next to the tests: verify checks that the program exists.
    /// </summary>
    private static async Task<(int Code, string Output)> SystemdAnalyzeAsync(params string[] args)
    {
        var dir = Directory.CreateTempSubdirectory("qubesweb-unit-");
        try
        {
            var dotnet = File.Exists("/usr/bin/dotnet") ? "/usr/bin/dotnet" : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "/usr/bin/dotnet";
            var unit = Unit.Replace("/usr/bin/dotnet ", dotnet + " ").Replace("/opt/qubesweb/QubesWeb.dll", Path.Combine(AppContext.BaseDirectory, "QubesWeb.dll"));
            var path = Path.Combine(dir.FullName, "qubesweb.service");
            await File.WriteAllTextAsync(path, unit);
            var result = await ProcessRunner.RunAsync("systemd-analyze", [.. args, path]);
            return (result.ExitCode, result.StandardOutput + result.StandardError);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [GeneratedRegex(@"Overall exposure level for \S+: ([0-9.]+)")]
    private static partial Regex Exposure();
}
