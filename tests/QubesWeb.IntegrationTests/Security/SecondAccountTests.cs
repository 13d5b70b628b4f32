// Another local account on the same machine, as the issue found it: it reaches the loopback port and the file system,
// and must get nothing from either. The account is made by the test and removed after it; its tools are curl and cat,
// run with setpriv as that account (argument lists, no shell).
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.IntegrationTests.Security;

public sealed class SecondAccountTests : IAsyncLifetime
{
    private readonly string _user = "qwguest" + Random.Shared.Next(100_000, 999_999);
    private ConsoleHost? _host;

    private ConsoleHost Host => _host ?? throw new InvalidOperationException("Not started.");

    public async Task InitializeAsync()
    {
        var made = await RunAsync("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _user);
        Assert.True(made.Code == 0, $"useradd failed: {made.Output}");
        _host = await ConsoleHost.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_host is not null) await _host.DisposeAsync();
        await RunAsync("userdel", _user);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/qubes/vault")]
    [InlineData("/tasks")]
    public async Task Its_requests_get_the_sign_in_page_and_no_estate_data(string path)
    {
        var (code, output) = await AsGuestAsync("curl", "-sS", "-w", "\n%{http_code}", Host.BaseUrl + path);
        Assert.True(code == 0, output);
        Assert.EndsWith("\n401", output.TrimEnd());
        foreach (var name in new[] { "vault", "fedora-42", "work" })
            Assert.DoesNotContain(name, output.Replace(path, ""));
    }

    [Fact]
    public async Task It_cannot_open_a_circuit_even_with_the_right_origin()
    {
        var (code, output) = await AsGuestAsync("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
            "-H", "Origin: " + Host.BaseUrl, Host.BaseUrl + "/_blazor/negotiate?negotiateVersion=1");
        Assert.True(code == 0, output);
        Assert.Equal("401", output.Trim());
    }

    [Theory]
    [InlineData("sign-in-secret")]
    [InlineData("sign-in-link")]
    [InlineData("qubesweb.db")]
    [InlineData("pool/vault/private.qcow2")]
    [InlineData("pool/fedora-42/root.1.qcow2")]
    public async Task It_cannot_read_the_consoles_files(string file)
    {
        var path = Path.Combine(Host.DataDir, file);
        Assert.True(File.Exists(path), $"{path} should exist in the demo.");
        var (code, output) = await AsGuestAsync("cat", path);
        Assert.NotEqual(0, code);
        Assert.Contains("Permission denied", output);
    }

    private Task<(int Code, string Output)> AsGuestAsync(params string[] command) =>
        RunAsync("setpriv", ["--reuid=" + _user, "--regid=" + _user, "--clear-groups", "--", .. command]);

    /// <summary>The console's own argument-list runner; stdout and stderr together, as a user reads them.</summary>
    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var result = await ProcessRunner.RunAsync(file, args);
        return (result.ExitCode, result.StandardOutput + result.StandardError);
    }
}
