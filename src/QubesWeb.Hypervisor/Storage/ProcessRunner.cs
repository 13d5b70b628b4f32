using System.Diagnostics;
using System.Text;

namespace QubesWeb.Hypervisor.Storage;

public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError);

/// <summary>A tool exited non-zero; the message carries its own error text.</summary>
public sealed class ProcessFailedException(string tool, int exitCode, string stderr)
    : Exception($"{tool} failed (exit {exitCode}): {stderr.Trim()}")
{
    public int ExitCode { get; } = exitCode;
    public string StandardError { get; } = stderr;
}

/// <summary>Starts tools with argument lists, never through a shell, so no name can become a command.</summary>
public static class ProcessRunner
{
    public static async Task<ProcessResult> RunAsync(string file, IEnumerable<string> args, CancellationToken ct = default,
        Action<string>? onStdoutChunk = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["LC_ALL"] = "C";

        using var p = new Process { StartInfo = psi };
        try
        {
            p.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ProcessFailedException(file, -1, $"cannot start {file}: {e.Message} (is it installed?)");
        }
        p.StandardInput.Close();
        var stdout = new StringBuilder();
        var stdoutTask = Task.Run(async () =>
        {
            var buf = new char[4096];
            int n;
            while ((n = await p.StandardOutput.ReadAsync(buf, CancellationToken.None)) > 0)
            {
                var chunk = new string(buf, 0, n);
                stdout.Append(chunk);
                onStdoutChunk?.Invoke(chunk);
            }
        }, CancellationToken.None);
        var stderrTask = p.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            await p.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await p.WaitForExitAsync(CancellationToken.None);
            throw;
        }
        await stdoutTask;
        return new ProcessResult(p.ExitCode, stdout.ToString(), await stderrTask);
    }

    public static async Task<ProcessResult> RunCheckedAsync(string file, IEnumerable<string> args, CancellationToken ct = default,
        Action<string>? onStdoutChunk = null)
    {
        var r = await RunAsync(file, args, ct, onStdoutChunk);
        if (r.ExitCode != 0) throw new ProcessFailedException(Path.GetFileName(file), r.ExitCode, r.StandardError);
        return r;
    }
}
