// The inventory on a real, migrated SQLite file: Qubes' rules hold at the data layer, whoever calls it.
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data.Qubes;

namespace QubesWeb.IntegrationTests.InventoryTests;

public sealed class InventoryTests : IAsyncLifetime
{
    private TempInventory _store = null!;
    private QubesWeb.Data.Qubes.Inventory Inv => _store.Inventory;

    public async Task InitializeAsync() => _store = await TempInventory.CreateAsync();

    public async Task DisposeAsync() => await _store.DisposeAsync();

    private Task<Qube> Template(string name = "fedora-42") => Inv.CreateAsync(new NewQube(name, QubeClass.TemplateVM, "black"));

    private Task<Qube> AppVm(string name, string template = "fedora-42", string label = "blue", string? netvm = null, bool providesNetwork = false) =>
        Inv.CreateAsync(new NewQube(name, QubeClass.AppVM, label, template, netvm, providesNetwork));

    [Fact]
    public async Task The_eight_labels_are_seeded_with_Qubes_colours()
    {
        var labels = await Inv.LabelsAsync();

        Assert.Equal(
        [
            (1, "red", "#cc0000"), (2, "orange", "#f57900"), (3, "yellow", "#edd400"), (4, "green", "#73d216"),
            (5, "gray", "#555555"), (6, "blue", "#3465a4"), (7, "purple", "#75507b"), (8, "black", "#000000"),
        ], labels.Select(l => (l.Id, l.Name, l.Color)));
    }

    [Fact]
    public async Task Dom0_is_the_one_AdminVM_and_ensuring_it_twice_adds_nothing()
    {
        await Inv.EnsureAdminVmAsync();

        var dom0 = Assert.Single(await Inv.ListAsync());
        Assert.Equal("dom0", dom0.Name);
        Assert.Equal(QubeClass.AdminVM, dom0.Class);
        var error = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.CreateAsync(new NewQube("admin2", QubeClass.AdminVM, "black")));
        Assert.Contains("exactly one AdminVM", error.Message);
    }

    [Fact]
    public async Task An_AppVM_is_created_on_its_template_with_the_templates_memory()
    {
        await Inv.CreateAsync(new NewQube("fedora-42", QubeClass.TemplateVM, "black", MemoryMiB: 1500));

        await AppVm("work");

        var work = await Inv.GetAsync("work");
        Assert.Equal("fedora-42", work.Template!.Name);
        Assert.Equal("blue", work.Label.Name);
        Assert.Equal(1500, work.MemoryMiB);
        Assert.NotEqual(Guid.Empty, work.Uuid);
    }

    [Fact]
    public async Task An_AppVM_on_an_unknown_template_is_refused_and_nothing_is_written()
    {
        var before = await _store.RowCountsAsync();

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => AppVm("work", template: "no-such-template"));

        Assert.Contains("There is no template named 'no-such-template'", error.Message);
        Assert.Equal(before, await _store.RowCountsAsync());
    }

    [Fact]
    public async Task An_AppVM_whose_template_is_an_AppVM_is_refused_and_nothing_is_written()
    {
        await Template();
        await AppVm("work");
        var before = await _store.RowCountsAsync();

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => AppVm("child", template: "work"));

        Assert.Contains("'work' is an AppVM; an AppVM's template must be a TemplateVM", error.Message);
        Assert.Equal(before, await _store.RowCountsAsync());
    }

    [Fact]
    public async Task A_TemplateVM_with_a_template_is_refused()
    {
        await Template();

        var error = await Assert.ThrowsAsync<QubeRuleException>(() =>
            Inv.CreateAsync(new NewQube("fedora-43", QubeClass.TemplateVM, "black", Template: "fedora-42")));

        Assert.Contains("A TemplateVM has no template", error.Message);
        Assert.Null(await Inv.FindAsync("fedora-43"));
    }

    [Fact]
    public async Task A_duplicate_name_is_refused_with_already_exists()
    {
        await Template();
        await AppVm("work");
        var before = await _store.RowCountsAsync();

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => AppVm("work", label: "red"));

        Assert.Equal("A qube named 'work' already exists; choose another name.", error.Message);
        Assert.Equal(before, await _store.RowCountsAsync());
        Assert.Equal("blue", (await Inv.GetAsync("work")).Label.Name);
    }

    [Fact]
    public async Task Names_differing_only_in_case_are_different_qubes_as_in_Qubes()
    {
        await Template();
        await AppVm("work");

        await AppVm("Work");

        Assert.Equal(["Work", "dom0", "fedora-42", "work"], (await Inv.ListAsync()).Select(q => q.Name).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task The_same_new_name_created_from_two_tasks_at_once_has_exactly_one_winner()
    {
        await Template();
        for (var round = 0; round < 8; round++)
        {
            var name = $"race-{round}";
            using var go = new Barrier(2);
            var attempts = Enumerable.Range(0, 2).Select(i => Task.Run(async () =>
            {
                go.SignalAndWait();
                try
                {
                    await Inv.CreateAsync(new NewQube(name, QubeClass.AppVM, i == 0 ? "red" : "green", "fedora-42"));
                    return null;
                }
                catch (QubeRuleException e)
                {
                    return e.Message;
                }
            })).ToList();

            var outcomes = await Task.WhenAll(attempts);

            Assert.Single(outcomes, o => o is null);
            Assert.Single(outcomes, o => o == $"A qube named '{name}' already exists; choose another name.");
            await using var db = await _store.Contexts.CreateDbContextAsync();
            Assert.Equal(1, await db.Qubes.CountAsync(q => q.Name == name));
        }
    }

    public static TheoryData<string> BadNames => new()
    {
        "test-###", "--helpVM", "1stVM", "Domain-0", "none", "default", "x-dm", "my vm", "a;b", "$(id)", "../x", "a/b", "a\0b",
        "evil\u202Etxt", "wo\u200Brk", new string('a', 32), new string('a', 4096), "",
    };

    [Theory]
    [MemberData(nameof(BadNames))]
    public async Task A_create_with_a_bad_name_is_refused_and_writes_no_row(string name)
    {
        await Template();
        var before = await _store.RowCountsAsync();

        var error = await Assert.ThrowsAsync<QubeRuleException>(() =>
            Inv.CreateAsync(new NewQube(name, QubeClass.AppVM, "red", "fedora-42",
                Features: new Dictionary<string, string> { ["k"] = "v" },
                Volumes: [new NewVolume(VolumeKind.Private, null, 1 << 30)])));

        Assert.StartsWith("Invalid name", error.Message);
        Assert.Equal(before, await _store.RowCountsAsync());
    }

    [Fact]
    public async Task A_create_with_an_unknown_label_netvm_or_bad_memory_writes_no_row()
    {
        await Template();
        await AppVm("plain");
        var before = await _store.RowCountsAsync();

        var label = await Assert.ThrowsAsync<QubeRuleException>(() => AppVm("a1", label: "pink"));
        var netvm = await Assert.ThrowsAsync<QubeRuleException>(() => AppVm("a2", netvm: "plain"));
        var memory = await Assert.ThrowsAsync<QubeRuleException>(() =>
            Inv.CreateAsync(new NewQube("a3", QubeClass.StandaloneVM, "red", MemoryMiB: 0)));

        Assert.Contains("There is no label 'pink'; choose one of: red, orange, yellow, green, gray, blue, purple, black.", label.Message);
        Assert.Contains("'plain' does not provide network", netvm.Message);
        Assert.Contains("Memory must be between", memory.Message);
        Assert.Equal(before, await _store.RowCountsAsync());
    }

    [Fact]
    public async Task Create_all_with_one_broken_rule_creates_none()
    {
        var before = await _store.RowCountsAsync();

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.CreateAllAsync(
        [
            new NewQube("fedora-42", QubeClass.TemplateVM, "black", Volumes: [new NewVolume(VolumeKind.Root, null, 10L << 30)]),
            new NewQube("work", QubeClass.AppVM, "blue", "fedora-42"),
            new NewQube("bad name", QubeClass.AppVM, "red", "fedora-42"),
        ]));

        Assert.Contains("Invalid name", error.Message);
        Assert.Equal(before, await _store.RowCountsAsync());
    }

    [Fact]
    public async Task A_template_change_is_refused_while_the_AppVM_runs_and_accepted_while_it_is_halted()
    {
        await Template();
        await Template("debian-13");
        await AppVm("work");

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.SetTemplateAsync("work", "debian-13", qubeIsRunning: true));
        Assert.Contains("'work' is running; its template can change only while it is halted", error.Message);
        Assert.Equal("fedora-42", (await Inv.GetAsync("work")).Template!.Name);

        await Inv.SetTemplateAsync("work", "debian-13", qubeIsRunning: false);

        Assert.Equal("debian-13", (await Inv.GetAsync("work")).Template!.Name);
    }

    [Fact]
    public async Task A_template_change_to_a_non_template_or_of_a_template_is_refused()
    {
        await Template();
        await AppVm("work");
        await AppVm("other");

        var toAppVm = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.SetTemplateAsync("work", "other", false));
        var ofTemplate = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.SetTemplateAsync("fedora-42", "fedora-42", false));

        Assert.Contains("must be a TemplateVM", toAppVm.Message);
        Assert.Contains("only AppVMs and DispVMs have a template", ofTemplate.Message);
    }

    [Fact]
    public async Task Removing_a_template_with_dependents_is_refused_naming_each_dependent()
    {
        await Template();
        await AppVm("work");
        await AppVm("banking");
        await AppVm("mail");

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.RemoveAsync("fedora-42"));

        Assert.Contains("'fedora-42' is the template of 3 qube(s): banking, mail, work.", error.Message);
        Assert.NotNull(await Inv.FindAsync("fedora-42"));
    }

    [Fact]
    public async Task Removing_a_netvm_in_use_is_refused_naming_its_clients()
    {
        await Template();
        await AppVm("sys-net", label: "red", providesNetwork: true);
        await AppVm("work", netvm: "sys-net");
        await AppVm("personal", netvm: "sys-net");

        var error = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.RemoveAsync("sys-net"));

        Assert.Contains("'sys-net' is the netvm of 2 qube(s): personal, work.", error.Message);
        Assert.NotNull(await Inv.FindAsync("sys-net"));
    }

    [Fact]
    public async Task Removing_a_qube_nobody_depends_on_removes_it_with_its_features_and_volumes()
    {
        await Template();
        await Inv.CreateAsync(new NewQube("work", QubeClass.AppVM, "blue", "fedora-42",
            Features: new Dictionary<string, string> { ["internal"] = "1" }, Volumes: [new NewVolume(VolumeKind.Private, null, 1 << 30)]));

        await Inv.RemoveAsync("work");

        Assert.Null(await Inv.FindAsync("work"));
        var (_, features, volumes) = await _store.RowCountsAsync();
        Assert.Equal(0, features);
        Assert.Equal(0, volumes);
    }

    [Fact]
    public async Task Dom0_is_read_only_to_update_remove_and_template_change()
    {
        await Template();

        var update = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.UpdateAsync("dom0", new QubeChanges(Label: "red", MemoryMiB: 1024)));
        var remove = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.RemoveAsync("dom0"));
        var template = await Assert.ThrowsAsync<QubeRuleException>(() => Inv.SetTemplateAsync("dom0", "fedora-42", false));

        Assert.All(new[] { update, remove, template }, e => Assert.Contains("'dom0' is the admin qube and is read-only.", e.Message));
        var dom0 = await Inv.GetAsync("dom0");
        Assert.Equal(QubeClass.AdminVM, dom0.Class);
        Assert.Equal("black", dom0.Label.Name);
    }

    [Fact]
    public async Task An_update_that_breaks_a_rule_changes_nothing()
    {
        await Template();
        await AppVm("work");

        await Assert.ThrowsAsync<QubeRuleException>(() => Inv.UpdateAsync("work", new QubeChanges(Label: "red", MemoryMiB: 10)));
        await Assert.ThrowsAsync<QubeRuleException>(() => Inv.UpdateAsync("work", new QubeChanges(Notes: "bad\0note")));
        await Assert.ThrowsAsync<QubeRuleException>(() => Inv.UpdateAsync("work", new QubeChanges(NetVm: "work")));

        var work = await Inv.GetAsync("work");
        Assert.Equal("blue", work.Label.Name);
        Assert.Equal(400, work.MemoryMiB);
        Assert.Null(work.NetVm);
    }

    [Fact]
    public async Task Hostile_notes_are_stored_and_read_back_as_the_same_text()
    {
        const string notes = "<img src=x onerror=alert(1)> \"><svg onload=alert(1)> </script> ]]> <!ENTITY x SYSTEM \"file:///etc/passwd\"> '; DROP TABLE Qubes; --";
        await Template();
        await AppVm("work");

        await Inv.UpdateAsync("work", new QubeChanges(Notes: notes));

        Assert.Equal(notes, (await Inv.GetAsync("work")).Notes);
    }

    [Fact]
    public async Task The_database_is_in_WAL_mode_with_full_synchronous_commits()
    {
        await using (var raw = new SqliteConnection($"Data Source={_store.DatabasePath};Pooling=False"))
        {
            await raw.OpenAsync();
            await using var cmd = raw.CreateCommand();
            cmd.CommandText = "PRAGMA journal_mode;";
            Assert.Equal("wal", (string?)await cmd.ExecuteScalarAsync());
        }

        await using var db = await _store.Contexts.CreateDbContextAsync();
        await db.Database.OpenConnectionAsync();
        await using var sync = db.Database.GetDbConnection().CreateCommand();
        sync.CommandText = "PRAGMA synchronous;";
        Assert.Equal(2L, (long)(await sync.ExecuteScalarAsync())!); // FULL
        sync.CommandText = "PRAGMA foreign_keys;";
        Assert.Equal(1L, (long)(await sync.ExecuteScalarAsync())!);
    }
}
