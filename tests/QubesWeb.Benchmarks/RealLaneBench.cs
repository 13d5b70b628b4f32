// What the benchmarks that run on the real-hypervisor lane (--real) share: a console that does not log every SQL
// statement, and a template imported from a blank disk image, which no guest boots from and none needs to for
// libvirt to say "running".
using System.Security.Cryptography;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Templates;

namespace QubesWeb.Benchmarks;

public static class RealLaneBench
{
    /// <summary>Arguments that keep EF Core's per-statement logging out of a benchmark's output.</summary>
    public static readonly string[] Quiet =
    [
        "--Logging:LogLevel:Microsoft.EntityFrameworkCore.Update=None",
        "--Logging:LogLevel:Microsoft.EntityFrameworkCore.Database.Command=None",
    ];

    /// <summary>Imports <paramref name="template"/> from a blank 1 GiB image made in <paramref name="folder"/> (the caller deletes it).</summary>
    public static async Task ImportBlankTemplateAsync(ConsoleHost host, string template, string folder, TimeSpan timeout)
    {
        var image = Path.Combine(folder, "blank.raw");
        await using (var f = File.Create(image)) f.SetLength(1L << 30);
        string digest;
        await using (var f = File.OpenRead(image)) digest = Convert.ToHexStringLower(await SHA256.HashDataAsync(f));
        await SucceedsAsync(host, JobKind.Import, template, new ImportTemplateRequest(image, "black", "debian", digest), timeout);
    }
}
