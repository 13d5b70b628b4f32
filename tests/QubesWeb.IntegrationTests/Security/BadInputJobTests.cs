// The job door (JobEngine.EnqueueAsync) with the hostile inputs of shared/notes/security.md: every job kind refuses
// a target no qube could have, malformed arguments are refused as any rule is, libvirt's C API never sees a name cut
// at a NUL, and two tabs submitting the same new name at once: exactly one wins. Nothing is written on a refusal: no
// job row, no file or folder under the data folder, no libvirt domain, no inventory row.
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;
using QubesWeb.Services.Templates;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.Security;

public sealed class BadInputJobTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>Targets no qube can have; "vault\0x" is the one a C string would read as the existing "vault".</summary>
    private static readonly string[] HostileTargets =
    [
        "../x", "%2e%2e%2f", "a/b", "vault\0x", "vault\u202E", "vault\u200B", new string('a', 4096), "<script>alert(1)</script>",
        "$(id)", "--helpVM", "vault;reboot", "vault ", "",
    ];

    /// <summary>Every job kind, with arguments that would be valid for a valid target.</summary>
    public static TheoryData<string, string?> Kinds => new()
    {
        { JobKind.Create.Name, JobArguments.Serialize(new CreateQubeRequest(QubeClass.AppVM, "blue", "fedora-42", "sys-firewall")) },
        { JobKind.Clone.Name, JobArguments.Serialize(new CloneRequest(QubeClass.StandaloneVM, "fedora-42", "blue")) },
        { JobKind.Remove.Name, null },
        { "start", null }, { "shutdown", null }, { "kill", null }, { "pause", null }, { "resume", null }, { "restart", null },
        { JobKind.Update.Name, null },
        { JobKind.CheckUpdates.Name, null },
        { JobKind.Commit.Name, JobArguments.Serialize(new CommitRootRequest("bad input")) },
        { JobKind.Revert.Name, JobArguments.Serialize(new RevertRootRequest(1)) },
        { JobKind.Compact.Name, null },
        { JobKind.Detach.Name, null },
        { JobKind.RestartOutdated.Name, JobArguments.Serialize(new RestartOutdatedRequest()) },
    };

    private sealed record Snapshot(int Jobs, int Qubes, string Files, string Domains);

    private static async Task<Snapshot> SnapshotAsync(ConsoleHost host)
    {
        await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
        var files = Directory.EnumerateFileSystemEntries(host.DataDir, "*", SearchOption.AllDirectories)
            .Where(p => !Path.GetFileName(p).StartsWith("qubesweb.db", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
        var domains = host.Get<IHypervisor>().ListDomains().OrderBy(d => d.Name, StringComparer.Ordinal).Select(d => $"{d.Name}={d.State}");
        return new Snapshot(await db.Jobs.CountAsync(), await db.Qubes.CountAsync(), string.Join("\n", files), string.Join(",", domains));
    }

    private static string Escape(string s) =>
        s.Length > 40 ? $"({s.Length} chars)" : string.Concat(s.Select(c => c is < ' ' or > '~' ? $"\\u{(int)c:X4}" : c.ToString()));

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Every_job_kind_refuses_a_hostile_target_by_its_name_rule_and_writes_nothing(string kind, string? arguments)
    {
        await using var host = await ConsoleHost.StartAsync();
        var jobs = host.Get<JobEngine>();
        var before = await SnapshotAsync(host);
        var failures = new List<string>();

        foreach (var target in HostileTargets)
        {
            try
            {
                var error = await Assert.ThrowsAsync<QubeRuleException>(() => jobs.EnqueueAsync(new JobKind(kind), target, arguments, CancellationToken.None));
                Assert.StartsWith("Invalid name", error.Message);
                // The refusal is shown in the UI: no NUL, no invisible character, not the whole 4 KB back.
                Assert.DoesNotContain('\0', error.Message);
                Assert.DoesNotContain('\u202E', error.Message);
                Assert.True(error.Message.Length < 600, $"a message of {error.Message.Length} characters");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                failures.Add($"{Escape(target)}: {e.GetType().Name}: {e.Message}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Equal(before, await SnapshotAsync(host));
    }

    public static TheoryData<string, string, string> MalformedArguments => new()
    {
        // kind, arguments, a phrase of the refusal
        { JobKind.Create.Name, "{not json", "arguments are not a valid CreateQubeRequest" },
        { JobKind.Create.Name, "[]", "arguments are not a valid CreateQubeRequest" },
        { JobKind.Create.Name, "null", "needs arguments of type CreateQubeRequest" },
        { JobKind.Create.Name, "{\"class\":\"AppVM\",\"label\":\"blue\",\"template\":\"fedora-42\",\"memoryMiB\":\"lots\"}", "not a valid CreateQubeRequest" },
        { JobKind.Create.Name, "{\"class\":\"AppVM\",\"label\":\"blue\",\"template\":\"fedora-42\",\"memoryMiB\":0}", "Memory must be between" },
        { JobKind.Create.Name, "{\"class\":\"AppVM\",\"label\":\"blue\",\"template\":\"fedora-42\",\"vcpus\":-1}", "VCPUs must be between" },
        { JobKind.Create.Name, "{\"class\":\"AppVM\",\"label\":\"<img src=x onerror=alert(1)>\",\"template\":\"fedora-42\"}", "There is no label" },
        { JobKind.Create.Name, "{\"class\":\"AppVM\",\"label\":\"blue\",\"template\":\"../fedora-42\"}", "There is no template named" },
        { JobKind.Clone.Name, "{\"class\":\"Nope\",\"source\":\"fedora-42\",\"label\":\"blue\"}", "not a valid CloneRequest" },
        { JobKind.Clone.Name, "{\"class\":\"StandaloneVM\",\"source\":\"fedora-42\",\"label\":\"blue\",\"rootSizeBytes\":-1}", "cannot be smaller" },
        { JobKind.Clone.Name, "{\"class\":\"StandaloneVM\",\"source\":\"fedora-42\",\"label\":\"blue\",\"memoryMiB\":2147483647}", "Memory must be between" },
        { JobKind.Revert.Name, "{\"revision\":\"one\"}", "not a valid RevertRootRequest" },
    };

    [Theory]
    [MemberData(nameof(MalformedArguments))]
    public async Task Malformed_or_out_of_range_arguments_are_refused_with_a_message_and_nothing_is_written(string kind, string arguments, string phrase)
    {
        await using var host = await ConsoleHost.StartAsync();
        var before = await SnapshotAsync(host);
        var target = kind == JobKind.Revert.Name ? "fedora-42" : "new-one";

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<JobEngine>().EnqueueAsync(new JobKind(kind), target, arguments, CancellationToken.None));

        Assert.Contains(phrase, error.Message);
        Assert.Equal(before, await SnapshotAsync(host));
    }

    [Fact]
    public async Task Libvirt_is_never_asked_for_a_name_cut_at_a_NUL()
    {
        await using var host = await ConsoleHost.StartAsync();
        var hypervisor = host.Get<IHypervisor>();
        Assert.Equal(RunState.Halted, hypervisor.GetDomain("vault")?.State);

        // C reads "vault\0x" as "vault": without the guard this found, and would start, vault.
        Assert.Null(hypervisor.GetDomain("vault\0x"));
        var start = Assert.Throws<HypervisorException>(() => hypervisor.Start("vault\0x"));
        Assert.Contains("no domain with matching name 'vault?x'", start.Message);
        Assert.Equal(RunState.Halted, hypervisor.GetDomain("vault")?.State);

        // The template switch checks each name by the name rule before libvirt is asked: each hostile name is refused
        // on its own, and vault keeps its template.
        var results = await host.Get<QubeCommands>().SwitchTemplateAsync(["vault\0x", "../vault", "vault\u202E"], "fedora-42");
        Assert.All(results, r => Assert.StartsWith("Invalid name '", r.Refusal));
        Assert.Equal("debian-13", (await host.Get<InventoryService>().GetAsync("vault")).Template?.Name);
    }

    [Fact]
    public async Task Two_tabs_creating_the_same_new_name_at_once_one_wins_and_one_qube_folder_and_domain_exist()
    {
        await using var host = await ConsoleHost.StartAsync();
        var jobs = host.Get<JobEngine>();
        var create = new CreateQubeRequest(QubeClass.AppVM, "blue", "fedora-42", "sys-firewall");
        var clone = new CloneRequest(QubeClass.StandaloneVM, "fedora-42", "green");
        using var cts = new CancellationTokenSource(Timeout);

        foreach (var (name, second) in new[] { ("twin-a", (object)create), ("twin-b", clone) })
        {
            using var go = new ManualResetEventSlim();
            Task<Job> Submit(object request) => Task.Run(async () =>
            {
                go.Wait(cts.Token);
                return request is CreateQubeRequest c
                    ? await jobs.EnqueueAsync(JobKind.Create, name, c, cts.Token)
                    : await jobs.EnqueueAsync(JobKind.Clone, name, (CloneRequest)request, cts.Token);
            });
            var tabs = new[] { Submit(create), Submit(second) };
            go.Set();
            var outcomes = await Task.WhenAll(tabs.Select(OutcomeAsync));

            var won = Assert.Single(outcomes, o => o.Job is not null);
            var lost = Assert.Single(outcomes, o => o.Error is not null);
            // The loser is told why: the winner holds the name's lock, or has already made the qube.
            Assert.True(lost.Error is JobConflictException { Message: var m } && m.Contains($"'{name}' is busy")
                        || lost.Error is QubeRuleException { Message: var r } && r.Contains("already exists"), lost.Error!.ToString());
            Succeeded(await jobs.WaitAsync(won.Job!.Id, cts.Token));

            await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
            Assert.Equal(1, await db.Qubes.CountAsync(q => q.Name == name, cts.Token));
            // One creation was queued (a clone that won queues its copy's detach after it, on the same name).
            var detach = JobKind.Detach.Name;
            Assert.Equal(1, await db.Jobs.CountAsync(j => j.Target == name && j.Kind != detach, cts.Token));
            Assert.NotNull(host.Get<IHypervisor>().GetDomain(name));
            Assert.True(Directory.Exists(Path.Combine(host.PoolDir, name)));
        }
    }

    private static async Task<(Job? Job, Exception? Error)> OutcomeAsync(Task<Job> submitted)
    {
        try { return (await submitted, null); }
        catch (Exception e) when (e is QubeRuleException or JobConflictException) { return (null, e); }
    }

    [Fact]
    public async Task Two_inventory_writes_of_the_same_new_name_at_once_one_wins_and_the_other_is_told_it_exists()
    {
        await using var host = await ConsoleHost.StartAsync();
        var inventory = host.Get<InventoryService>();

        for (var round = 0; round < 10; round++)
        {
            var name = $"race-{round}";
            using var go = new ManualResetEventSlim();
            var writes = Enumerable.Range(0, 2).Select(i => Task.Run(async () =>
            {
                go.Wait();
                await inventory.CreateAsync(new NewQube(name, QubeClass.AppVM, i == 0 ? "red" : "blue", "fedora-42"));
            })).ToList();
            go.Set();
            var outcomes = await Task.WhenAll(writes.Select(async t => { try { await t; return null; } catch (Exception e) { return e; } }));

            var refusal = Assert.Single(outcomes, e => e is not null);
            Assert.Equal($"A qube named '{name}' already exists; choose another name.", Assert.IsType<QubeRuleException>(refusal).Message);
            Assert.Single(await inventory.ListAsync(), q => q.Name == name);
        }
    }

    [Fact]
    public async Task Arguments_with_null_where_text_is_expected_are_refused_or_taken_as_empty_never_a_false_already_exists()
    {
        await using var host = await ConsoleHost.StartAsync();
        var jobs = host.Get<JobEngine>();
        using var cts = new CancellationTokenSource(Timeout);
        const string nullNotes = "{\"class\":\"AppVM\",\"label\":\"blue\",\"template\":\"fedora-42\",\"netVm\":\"sys-firewall\",\"notes\":null}";
        const string nullLabel = "{\"class\":\"AppVM\",\"label\":null,\"template\":\"fedora-42\"}";

        var noLabel = await Assert.ThrowsAsync<QubeRuleException>(() => jobs.EnqueueAsync(JobKind.Create, "no-label", nullLabel, cts.Token));
        Assert.StartsWith("There is no label", noLabel.Message);

        // No notes is empty notes: the qube is made (it used to fail at the inventory step as "already exists").
        Succeeded(await jobs.WaitAsync((await jobs.EnqueueAsync(JobKind.Create, "no-notes", nullNotes, cts.Token)).Id, cts.Token));
        Assert.Equal("", (await host.Get<InventoryService>().GetAsync("no-notes")).Notes);
    }
}
